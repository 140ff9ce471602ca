// The model file: magic, version, JSON header, 64-byte aligned tensors, checksum, end
// marker (see docs/file-formats.md and io/model_file.hpp).
#include "io/model_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <limits>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/text_format.hpp"
#include "io/output_file.hpp"
#include "seqrec/error.hpp"
#include "seqrec/model.hpp"

#ifndef SEQREC_VERSION
#define SEQREC_VERSION "unknown"
#endif

namespace seqrec {

namespace mf = model_file;

static_assert(std::endian::native == std::endian::little,
              "the model file format is little-endian; big-endian hosts need byte swapping");

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

template <class T>
void put_le(unsigned char* p, T v) {
  std::memcpy(p, &v, sizeof v);  // little-endian host (static_assert above)
}

template <class T>
T get_le(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Writes a file through an OutputFile while hashing every byte written.
class HashingWriter {
 public:
  explicit HashingWriter(io::OutputFile& out) : out_(out) {}
  void write(const void* data, size_t n) {
    hash_ = mf::fnv1a64(data, n, hash_);
    write_raw(data, n);
  }
  void zeros(size_t n) {
    static const unsigned char z[mf::kAlign] = {};
    while (n > 0) {
      const size_t k = std::min(n, sizeof z);
      write(z, k);
      n -= k;
    }
  }
  void write_raw(const void* data, size_t n) {
    out_.write(data, n);
    written_ += n;
  }
  uint64_t hash() const { return hash_; }
  size_t written() const { return written_; }

 private:
  io::OutputFile& out_;
  uint64_t hash_ = mf::kFnvOffset;
  size_t written_ = 0;
};

[[noreturn]] void bad_file(const std::string& path, const std::string& what) {
  throw InputError(path, 0, what);
}

/// Index of the first NaN or infinity among `n` IEEE numbers whose exponent field is
/// `exp_mask` (all ones means not finite), or `n` when all are finite. Tested on the bits, so
/// that it holds whatever the floating-point flags; one branch-free pass that vectorises, the
/// index looked for only when something was found.
template <class Bits>
size_t first_non_finite(const void* data, size_t n, Bits exp_mask) {
  const auto* p = static_cast<const unsigned char*>(data);
  Bits bad = 0;
  for (size_t i = 0; i < n; ++i) {
    Bits u;
    std::memcpy(&u, p + i * sizeof(Bits), sizeof(Bits));
    bad |= static_cast<Bits>((u & exp_mask) == exp_mask);
  }
  if (!bad) return n;
  for (size_t i = 0; i < n; ++i) {
    Bits u;
    std::memcpy(&u, p + i * sizeof(Bits), sizeof(Bits));
    if ((u & exp_mask) == exp_mask) return i;
  }
  return n;
}

/// Refuses a floating-point tensor that holds NaN or infinity: no training writes them, and
/// the kernels' fast paths (fast_exp, the top-k selection) are undefined on them.
void check_finite(const std::string& path, const TensorEntry& e) {
  size_t n = 0, at = 0;
  std::string value;
  if (e.dtype == DType::F32) {
    n = e.nbytes / 4;
    at = first_non_finite<uint32_t>(e.data, n, 0x7f800000u);
    if (at < n) value = std::to_string(static_cast<const float*>(e.data)[at]);
  } else if (e.dtype == DType::F64) {
    n = e.nbytes / 8;
    at = first_non_finite<uint64_t>(e.data, n, 0x7ff0000000000000ull);
    if (at < n) value = std::to_string(static_cast<const double*>(e.data)[at]);
  } else {
    return;
  }
  if (at < n) {
    bad_file(path, "tensor '" + e.name + "' holds a non-finite number (" + value + ") at element " +
                       std::to_string(at) + "; a model file must hold finite numbers only");
  }
}

DType parse_dtype(const std::string& path, const std::string& tensor, const std::string& s) {
  for (DType t : {DType::F32, DType::F64, DType::I32, DType::I64}) {
    if (s == dtype_name(t)) return t;
  }
  bad_file(path, "tensor '" + tensor + "': unknown dtype '" + s + "'");
}

const nlohmann::json& field(const std::string& path, const nlohmann::json& j,
                            const std::string& key, nlohmann::json::value_t type,
                            const char* type_name) {
  auto it = j.find(key);
  const bool ok =
      it != j.end() && (it->type() == type || (type == nlohmann::json::value_t::number_unsigned &&
                                               it->is_number_integer() && *it >= 0));
  if (!ok) bad_file(path, std::string("header field '") + key + "' missing or not " + type_name);
  return *it;
}

uint64_t field_u64(const std::string& path, const nlohmann::json& j, const std::string& key) {
  return field(path, j, key, nlohmann::json::value_t::number_unsigned, "a non-negative integer")
      .get<uint64_t>();
}

struct AlignedBuffer {
  static std::shared_ptr<unsigned char> make(size_t n) {
    void* p = ::operator new(std::max<size_t>(n, 1), std::align_val_t(mf::kAlign));
    return std::shared_ptr<unsigned char>(static_cast<unsigned char*>(p), [](unsigned char* q) {
      ::operator delete(q, std::align_val_t(mf::kAlign));
    });
  }
};

}  // namespace

void save_model(const std::string& path, const ModelBundle& bundle) {
  if (!bundle.model) throw Error("save_model('" + path + "'): the bundle holds no model");
  mf::write(path, *bundle.model, bundle.items, bundle.item_counts, bundle.meta, nullptr, {});
}

void model_file::write(const std::string& path, const Model& model, const Vocab& items,
                       std::span<const int64_t> item_counts, const nlohmann::json& meta,
                       const nlohmann::json* checkpoint,
                       const std::vector<TensorEntry>& train_tensors) {
  io::OutputFile out(path);
  write(out, model, items, item_counts, meta, checkpoint, train_tensors);
}

void model_file::write(io::OutputFile& file, const Model& model, const Vocab& items,
                       std::span<const int64_t> item_counts, const nlohmann::json& meta,
                       const nlohmann::json* checkpoint,
                       const std::vector<TensorEntry>& train_tensors) {
  const std::string& path = file.path();
  if (items.size() != model.n_items()) {
    throw Error("save_model('" + path + "'): the bundle has " + std::to_string(items.size()) +
                " item ids but the model " + std::to_string(model.n_items()) + " items");
  }
  TensorWriter w;
  model.save(w);
  for (const TensorEntry& e : w.entries()) {
    for (const char* reserved : {mf::kBundlePrefix, mf::kTrainPrefix}) {
      if (e.name.rfind(reserved, 0) == 0) {
        throw Error("save_model: model tensor '" + e.name + "' uses the reserved prefix '" +
                    reserved + "'");
      }
    }
  }
  if (!item_counts.empty()) {
    w.add<int64_t>(std::string(mf::kBundlePrefix) + "item_counts", item_counts);
  }
  for (const TensorEntry& e : train_tensors) {
    w.add_raw(std::string(mf::kTrainPrefix) + e.name, e.dtype, e.shape, e.data, e.nbytes);
  }

  nlohmann::json tensors = nlohmann::json::array();
  size_t offset = 0;
  for (const TensorEntry& e : w.entries()) {
    offset = mf::align_up(offset);
    tensors.push_back({{"name", e.name},
                       {"dtype", dtype_name(e.dtype)},
                       {"shape", e.shape},
                       {"offset", offset},
                       {"nbytes", e.nbytes}});
    offset += e.nbytes;
  }
  const size_t data_bytes = mf::align_up(offset);

  nlohmann::json header = {
      {"format_version", mf::kFormatVersion},
      {"seqrec_version", SEQREC_VERSION},
      {"created", utc_now_text("%Y-%m-%dT%H:%M:%SZ")},
      {"model_type", model.type()},
      {"config", model.config().to_json()},
      {"meta", meta.is_null() ? nlohmann::json::object() : meta},
      {"n_items", model.n_items()},
      {"items", items.tokens()},
      {"alignment", mf::kAlign},
      {"checksum", "fnv1a64"},
      {"data_bytes", data_bytes},
      {"tensors", tensors},
  };
  if (checkpoint) header["checkpoint"] = *checkpoint;
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& ex) {
    // Item ids or metadata that are not valid UTF-8 cannot go into the JSON header.
    throw InputError("cannot write model file '" + path + "': " + ex.what());
  }

  HashingWriter out(file);
  unsigned char prefix[mf::kPrefixSize];
  std::memcpy(prefix, mf::kMagic, 8);
  put_le<uint32_t>(prefix + 8, mf::kFormatVersion);
  put_le<uint32_t>(prefix + 12, 0);
  put_le<uint64_t>(prefix + 16, text.size());
  out.write(prefix, sizeof prefix);
  out.write(text.data(), text.size());
  out.zeros(mf::align_up(out.written()) - out.written());
  const size_t data_start = out.written();
  for (size_t i = 0; i < w.entries().size(); ++i) {
    const TensorEntry& e = w.entries()[i];
    const size_t at = data_start + tensors[i]["offset"].get<size_t>();
    out.zeros(at - out.written());
    out.write(e.data, e.nbytes);
  }
  out.zeros(data_start + data_bytes - out.written());
  unsigned char trailer[mf::kTrailerSize];
  put_le<uint64_t>(trailer, out.hash());
  std::memcpy(trailer + 8, mf::kEndMagic, 8);
  out.write_raw(trailer, sizeof trailer);
  file.commit();
}

ModelBundle load_model(const std::string& path) {
  return std::move(mf::read(path).bundle);
}

mf::Contents model_file::read(const std::string& path) {
  // Read the whole file into a 64-byte aligned buffer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open model file '" + path + "': " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const std::string why = S_ISDIR(st.st_mode) ? "is a directory" : errno_text();
    ::close(fd);
    throw IoError("cannot read model file '" + path + "': " + why);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  std::shared_ptr<unsigned char> buf = AlignedBuffer::make(size);
  size_t got = 0;
  while (got < size) {
    const ssize_t k = ::read(fd, buf.get() + got, size - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      const std::string why = k < 0 ? errno_text() : "file shrank while reading";
      ::close(fd);
      throw IoError("cannot read model file '" + path + "': " + why);
    }
    got += static_cast<size_t>(k);
  }
  ::close(fd);
  const unsigned char* b = buf.get();

  // Fixed-size parts first, then the checksum over everything, then the JSON header.
  if (size < 8 || std::memcmp(b, mf::kMagic, 8) != 0) {
    bad_file(path, size < 8 ? "not a seqrec model file (only " + std::to_string(size) + " bytes)"
                            : "not a seqrec model file (wrong magic bytes)");
  }
  if (size < mf::kPrefixSize + mf::kTrailerSize) {
    bad_file(path, "corrupt or truncated (only " + std::to_string(size) + " bytes)");
  }
  const uint32_t version = get_le<uint32_t>(b + 8);
  if (version > mf::kFormatVersion) {
    bad_file(path, "written by a newer seqrec (format " + std::to_string(version) +
                       "); this build reads up to " + std::to_string(mf::kFormatVersion));
  }
  if (version == 0) bad_file(path, "unsupported model file format 0");
  if (std::memcmp(b + size - 8, mf::kEndMagic, 8) != 0) {
    bad_file(path, "corrupt or truncated (end marker missing)");
  }
  const uint64_t header_len = get_le<uint64_t>(b + 16);
  if (header_len > size - mf::kPrefixSize - mf::kTrailerSize) {
    bad_file(path, "corrupt or truncated (header length " + std::to_string(header_len) +
                       " beyond file size " + std::to_string(size) + ")");
  }
  const uint64_t stored = get_le<uint64_t>(b + size - mf::kTrailerSize);
  const uint64_t computed = mf::fnv1a64(b, size - mf::kTrailerSize);
  if (stored != computed) {
    bad_file(path, "corrupt or truncated (checksum mismatch: stored " + hex64(stored) +
                       ", computed " + hex64(computed) + ")");
  }

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(b + mf::kPrefixSize, b + mf::kPrefixSize + header_len);
  } catch (const nlohmann::json::exception& ex) {
    bad_file(path, std::string("bad JSON header: ") + ex.what());
  }
  if (!header.is_object()) bad_file(path, "bad JSON header: not an object");
  using VT = nlohmann::json::value_t;
  const uint64_t json_version = field_u64(path, header, "format_version");
  if (json_version != version) {
    bad_file(path, "header format_version " + std::to_string(json_version) +
                       " differs from the file's format " + std::to_string(version));
  }
  const std::string type =
      field(path, header, "model_type", VT::string, "a string").get<std::string>();
  const uint64_t n_items = field_u64(path, header, "n_items");
  const nlohmann::json& items = field(path, header, "items", VT::array, "an array");
  const nlohmann::json& config_json = field(path, header, "config", VT::object, "an object");
  const nlohmann::json& tensors = field(path, header, "tensors", VT::array, "an array");
  const uint64_t data_bytes = field_u64(path, header, "data_bytes");

  const size_t data_start = mf::align_up(mf::kPrefixSize + header_len);
  if (data_start > size - mf::kTrailerSize || data_bytes != size - mf::kTrailerSize - data_start) {
    bad_file(path, "corrupt or truncated (the data section should hold " +
                       std::to_string(data_bytes) + " bytes, the file has room for " +
                       std::to_string(size - mf::kTrailerSize -
                                      std::min(data_start, size - mf::kTrailerSize)) +
                       ")");
  }

  // Tensors: bounds, alignment, shape x dtype == nbytes, unique names.
  mf::Contents out;
  std::vector<TensorEntry> model_entries;
  std::vector<std::string> names;
  ModelBundle& bundle = out.bundle;
  for (const nlohmann::json& t : tensors) {
    if (!t.is_object()) bad_file(path, "header field 'tensors' holds a non-object");
    const std::string name = field(path, t, "name", VT::string, "a string").get<std::string>();
    TensorEntry e;
    e.name = name;
    e.dtype =
        parse_dtype(path, name, field(path, t, "dtype", VT::string, "a string").get<std::string>());
    const nlohmann::json& shape = field(path, t, "shape", VT::array, "an array");
    uint64_t count = 1;
    bool overflow = false;
    for (const nlohmann::json& d : shape) {
      if (!d.is_number_integer() || d < 0) {
        bad_file(path, "tensor '" + name + "': shape holds a non-integer or negative entry");
      }
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && count > std::numeric_limits<uint64_t>::max() / 8 / dim) overflow = true;
      count *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    const uint64_t offset = field_u64(path, t, "offset");
    const uint64_t nbytes = field_u64(path, t, "nbytes");
    if (overflow || count * dtype_size(e.dtype) != nbytes) {
      bad_file(path, "tensor '" + name + "': its shape and dtype do not match nbytes " +
                         std::to_string(nbytes));
    }
    if (offset % mf::kAlign != 0) {
      bad_file(path, "tensor '" + name + "': offset " + std::to_string(offset) +
                         " is not 64-byte aligned");
    }
    if (offset > data_bytes || nbytes > data_bytes - offset) {
      bad_file(path, "tensor '" + name + "' (offset " + std::to_string(offset) + ", " +
                         std::to_string(nbytes) + " bytes) lies outside the data section (" +
                         std::to_string(data_bytes) + " bytes)");
    }
    for (const std::string& o : names) {
      if (o == name) bad_file(path, "tensor '" + name + "' listed twice");
    }
    names.push_back(name);
    e.data = b + data_start + offset;
    e.nbytes = static_cast<size_t>(nbytes);
    check_finite(path, e);
    if (name.rfind(mf::kBundlePrefix, 0) == 0) {
      if (name == std::string(mf::kBundlePrefix) + "item_counts") {
        if (e.dtype != DType::I64 || e.shape != std::vector<int64_t>{int64_t(n_items)}) {
          bad_file(path, "tensor '" + name + "' should be i64 [" + std::to_string(n_items) + "]");
        }
        const auto* p = static_cast<const int64_t*>(e.data);
        bundle.item_counts.assign(p, p + n_items);
      }
      continue;  // unknown bundle tensors from later minor versions are ignored
    }
    if (name.rfind(mf::kTrainPrefix, 0) == 0) {
      e.name = name.substr(std::strlen(mf::kTrainPrefix));
      out.train_tensors.push_back(std::move(e));
      continue;
    }
    model_entries.push_back(std::move(e));
  }

  // Item ids.
  if (items.size() != n_items) {
    bad_file(path, "the header lists " + std::to_string(items.size()) +
                       " item ids but n_items is " + std::to_string(n_items));
  }
  bundle.items.reserve(items.size());
  for (const nlohmann::json& id : items) {
    if (!id.is_string()) bad_file(path, "header field 'items' holds a non-string");
    const std::string& s = id.get_ref<const std::string&>();
    const int32_t before = bundle.items.size();
    if (bundle.items.add(s) != before) bad_file(path, "duplicate item id '" + s + "'");
  }

  // The model itself.
  if (header.contains("meta")) bundle.meta = header["meta"];
  try {
    find_model(type);
  } catch (const InputError& ex) {
    bad_file(path, ex.what());
  }
  Config config = default_config(type);
  config.from_json(config_json, path);
  bundle.model = create_model(type, config);
  out.model_tensors = model_entries;
  bundle.model->load(TensorReader(std::move(model_entries), path));
  if (static_cast<uint64_t>(bundle.model->n_items()) != n_items) {
    bad_file(path, "the model holds " + std::to_string(bundle.model->n_items()) +
                       " items but the header lists " + std::to_string(n_items));
  }
  bundle.storage = std::shared_ptr<const void>(buf, buf.get());
  out.header = std::move(header);
  return out;
}

nlohmann::json model_file::peek_header(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  auto read_at = [&](void* dst, size_t n, off_t at) {
    size_t got = 0;
    while (got < n) {
      const ssize_t k =
          ::pread(fd, static_cast<char*>(dst) + got, n - got, at + static_cast<off_t>(got));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) return false;
      got += static_cast<size_t>(k);
    }
    return true;
  };
  nlohmann::json header;
  unsigned char prefix[mf::kPrefixSize];
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read_at(prefix, sizeof prefix, 0) &&
      std::memcmp(prefix, mf::kMagic, 8) == 0) {
    const uint64_t len = get_le<uint64_t>(prefix + 16);
    if (len <= static_cast<uint64_t>(st.st_size) - mf::kPrefixSize) {
      std::string text(static_cast<size_t>(len), '\0');
      if (read_at(text.data(), text.size(), static_cast<off_t>(mf::kPrefixSize))) {
        header = nlohmann::json::parse(text, nullptr, false);
        if (!header.is_object()) header = nullptr;
      }
    }
  }
  ::close(fd);
  return header;
}

}  // namespace seqrec
