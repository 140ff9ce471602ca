// Named, typed, shaped arrays: how models hand their state to the model file and back.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace seqrec {

enum class DType : uint8_t { F32 = 0, F64 = 1, I32 = 2, I64 = 3 };

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::F32; }
template <>
constexpr DType dtype_of<double>() { return DType::F64; }
template <>
constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <>
constexpr DType dtype_of<int64_t>() { return DType::I64; }

const char* dtype_name(DType t);
size_t dtype_size(DType t);

/// One named array. `data` points into storage owned by the writer or the loaded file.
struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

/// Collects tensors to be written. Copies the data, so sources may go away.
class TensorWriter {
 public:
  template <class T>
  void add(const std::string& name, std::span<const T> data, std::vector<int64_t> shape = {}) {
    if (shape.empty()) shape = {static_cast<int64_t>(data.size())};
    add_raw(name, dtype_of<T>(), std::move(shape), data.data(), data.size_bytes());
  }
  void add_raw(const std::string& name, DType dtype, std::vector<int64_t> shape,
               const void* data, size_t nbytes);
  const std::vector<TensorEntry>& entries() const { return entries_; }

 private:
  std::vector<TensorEntry> entries_;
  std::vector<std::vector<unsigned char>> storage_;
};

/// Gives access to loaded tensors by name, checking type and shape.
class TensorReader {
 public:
  TensorReader() = default;
  TensorReader(std::vector<TensorEntry> entries, std::string source)
      : entries_(std::move(entries)), source_(std::move(source)) {}
  bool has(const std::string& name) const;
  const TensorEntry& entry(const std::string& name) const;
  /// Throws Error naming the file and tensor when absent, of another dtype, or (when
  /// `shape` is given) of another shape.
  template <class T>
  std::span<const T> get(const std::string& name, const std::vector<int64_t>& shape = {}) const {
    const TensorEntry& e = checked(name, dtype_of<T>(), shape);
    return {static_cast<const T*>(e.data), e.nbytes / sizeof(T)};
  }
  const std::vector<TensorEntry>& entries() const { return entries_; }
  /// Where the tensors came from (a model file path), for error messages; may be empty.
  const std::string& source() const { return source_; }

 private:
  const TensorEntry& checked(const std::string& name, DType dtype,
                             const std::vector<int64_t>& shape) const;
  std::vector<TensorEntry> entries_;
  std::string source_;
};

}  // namespace seqrec
