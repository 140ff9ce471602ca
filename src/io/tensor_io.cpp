#include "seqrec/tensor_io.hpp"

#include <string>

#include "seqrec/error.hpp"

namespace seqrec {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F64:
      return "f64";
    case DType::I32:
      return "i32";
    case DType::I64:
      return "i64";
  }
  return "unknown";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::F64:
      return 8;
    case DType::I32:
      return 4;
    case DType::I64:
      return 8;
  }
  return 0;
}

void TensorWriter::add_raw(const std::string& name, DType dtype, std::vector<int64_t> shape,
                           const void* data, size_t nbytes) {
  for (const TensorEntry& e : entries_) {
    if (e.name == name) throw Error("tensor '" + name + "' added twice");
  }
  // The element count implied by the shape must match the bytes handed over.
  uint64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("tensor '" + name + "': negative dimension in " + shape_text(shape));
    count *= static_cast<uint64_t>(d);
  }
  if (count * dtype_size(dtype) != nbytes) {
    throw Error("tensor '" + name + "': shape " + shape_text(shape) + " of " + dtype_name(dtype) +
                " needs " + std::to_string(count * dtype_size(dtype)) + " bytes, got " +
                std::to_string(nbytes));
  }
  const auto* bytes = static_cast<const unsigned char*>(data);
  storage_.emplace_back(bytes, bytes + nbytes);
  TensorEntry e;
  e.name = name;
  e.dtype = dtype;
  e.shape = std::move(shape);
  e.data = storage_.back().data();
  e.nbytes = nbytes;
  entries_.push_back(std::move(e));
}

bool TensorReader::has(const std::string& name) const {
  for (const TensorEntry& e : entries_) {
    if (e.name == name) return true;
  }
  return false;
}

const TensorEntry& TensorReader::entry(const std::string& name) const {
  for (const TensorEntry& e : entries_) {
    if (e.name == name) return e;
  }
  throw Error((source_.empty() ? std::string() : source_ + ": ") + "tensor '" + name +
              "' is missing");
}

const TensorEntry& TensorReader::checked(const std::string& name, DType dtype,
                                         const std::vector<int64_t>& shape) const {
  const TensorEntry& e = entry(name);
  const std::string where =
      (source_.empty() ? std::string() : source_ + ": ") + "tensor '" + name + "'";
  if (e.dtype != dtype) {
    throw Error(where + " has dtype " + dtype_name(e.dtype) + ", expected " + dtype_name(dtype));
  }
  if (!shape.empty() && e.shape != shape) {
    throw Error(where + " has shape " + shape_text(e.shape) + ", expected " + shape_text(shape));
  }
  return e;
}

}  // namespace seqrec
