// _seqrec: the Python extension module under the `seqrec` package (python/seqrec). It is a
// thin layer over the library, calling the same functions as the CLI (src/app,
// tools/seqrec/main.cpp) and the server (seqrec::Recommender); the Python-facing API, its
// checks of pandas/NumPy input and its documentation are in python/seqrec (docs/python.md).
//
// Long calls (reading, preparing, training, evaluating, comparing) run in a worker thread
// while the calling thread waits without the GIL and polls for signals: Ctrl-C sets the
// library's interrupt flag (seqrec/interrupt.hpp), the call unwinds, and KeyboardInterrupt is
// raised. Library errors become the package's exceptions (seqrec.Error, InputError,
// IoError, NotFoundError) with the library's messages.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "app/checkpoint.hpp"
#include "app/compare.hpp"
#include "app/options.hpp"
#include "app/param_flags.hpp"
#include "app/tune.hpp"
#include "app/workflow.hpp"
#include "core/isa.hpp"
#include "core/parallel.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/interrupt.hpp"
#include "seqrec/model.hpp"
#include "seqrec/recommender.hpp"
#include "serve/topk.hpp"

namespace py = pybind11;
using namespace seqrec;
namespace fs = std::filesystem;

namespace {

// ---- errors ---------------------------------------------------------------------------------

PyObject* g_error = nullptr;
PyObject* g_input_error = nullptr;
PyObject* g_io_error = nullptr;
PyObject* g_not_found = nullptr;
PyObject* g_is_dir = nullptr;

/// A file or folder the user named does not exist (raised as seqrec.NotFoundError).
class NotFound : public IoError {
 public:
  explicit NotFound(const std::string& what) : IoError(what) {}
};

/// Runs f(); an error while `path` does not exist becomes NotFound with the same message.
template <class F>
auto on_path(const std::string& path, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Interrupted&) {
    throw;
  } catch (const Error& e) {
    std::error_code ec;
    if (!path.empty() && !fs::exists(path, ec)) throw NotFound(e.what());
    throw;
  }
}

/// A folder was named where a file is read (raised as seqrec.IsADirectoryError).
class IsDirectory : public IoError {
 public:
  explicit IsDirectory(const std::string& what) : IoError(what) {}
};

/// on_path() for a path that must be a file: an I/O error on a folder becomes IsDirectory.
template <class F>
auto on_file(const std::string& path, F&& f) -> decltype(f()) {
  try {
    return on_path(path, std::forward<F>(f));
  } catch (const NotFound&) {
    throw;
  } catch (const IoError& e) {
    std::error_code ec;
    if (!path.empty() && fs::is_directory(path, ec)) throw IsDirectory(e.what());
    throw;
  }
}

// ---- running long calls ----------------------------------------------------------------------

/// Runs f() in a worker thread while this thread, without the GIL, polls for signals every
/// 50 ms. A signal handler that raises (Ctrl-C: KeyboardInterrupt) asks the library to stop;
/// once f() has unwound, that exception is raised here. Called with the GIL held.
template <class F>
auto run_interruptible(F&& f) -> std::invoke_result_t<F&> {
  using R = std::invoke_result_t<F&>;
  using Slot = std::conditional_t<std::is_void_v<R>, bool, std::optional<R>>;
  Slot result{};
  std::exception_ptr err;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::optional<py::error_already_set> pending;
  clear_interrupt();
  {
    py::gil_scoped_release release;
    std::thread worker([&] {
      try {
        if constexpr (std::is_void_v<R>) {
          f();
        } else {
          result.emplace(f());
        }
      } catch (...) {
        err = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        done = true;
      }
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return done; })) {
      if (pending) continue;
      lock.unlock();
      {
        py::gil_scoped_acquire acquire;
        if (PyErr_CheckSignals() != 0) {
          pending.emplace();  // fetches the exception the handler raised
          request_interrupt();
        }
      }
      lock.lock();
    }
    lock.unlock();
    worker.join();
  }
  clear_interrupt();
  if (pending) throw *pending;
  if (err) std::rethrow_exception(err);
  if constexpr (!std::is_void_v<R>) return std::move(*result);
}

// ---- conversions --------------------------------------------------------------------------------

py::object to_py(const nlohmann::json& j) {
  // Leaked on purpose: destroying it at exit would run after the interpreter is gone.
  static const auto* loads = new py::object(py::module_::import("json").attr("loads"));
  return (*loads)(j.dump());
}

using Options = std::vector<std::pair<std::string, std::string>>;

/// A Config over `specs` with the (name, value as text) pairs set (the Python layer turns
/// values into the CLI's text). An unknown name is an InputError naming `what` and the
/// nearest option.
Config make_config(const std::vector<ParamSpec>& specs, const Options& values,
                   const std::string& what) {
  Config c(specs);
  for (const auto& [name, value] : values) {
    if (!c.has(name)) {
      std::vector<std::string> names;
      for (const auto& s : specs) names.push_back(s.name);
      const std::string near = cli::nearest_name(name, names);
      throw InputError("'" + name + "' is not an option of " + what +
                       (near.empty() ? "" : " (did you mean '" + near + "'?)"));
    }
    c.set(name, value, name);
  }
  return c;
}

/// Read-only NumPy view of `n` values at `p`, kept alive by `owner`.
template <class T>
py::array view(const T* p, size_t n, py::handle owner) {
  py::array a(py::dtype::of<T>(), std::vector<py::ssize_t>{static_cast<py::ssize_t>(n)}, p, owner);
  a.attr("flags").attr("writeable") = false;
  return a;
}

py::list str_list(const std::vector<std::string>& v) {
  py::list out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = py::str(v[i]);
  return out;
}

// ---- data
// ------------------------------------------------------------------------------------------

/// Sequences over a catalogue (a log, or one part of a split).
struct PyEvents {
  std::shared_ptr<TrainData> d;
  std::string layout;     ///< how a file was read
  std::string time_note;  ///< what read_events noticed about the times
};

PyEvents events_of(EventLog log, const std::string& protocol, const ReadInfo* info) {
  PyEvents e;
  e.d = std::make_shared<TrainData>();
  e.d->items = std::move(log.items);
  e.d->train = std::move(log.seqs);
  e.d->source = log.source;
  e.d->protocol = protocol;
  if (info) {
    e.layout = info->layout;
    e.time_note = info->time_note;
  }
  return e;
}

PyEvents part_of(const PreparedSplit& s, const SequenceSet& seqs, const std::string& name) {
  PyEvents e;
  e.d = std::make_shared<TrainData>();
  e.d->items = s.items;
  e.d->train = seqs;
  e.d->protocol = s.protocol;
  e.d->source = name;
  return e;
}

struct PySplit {
  std::optional<PreparedSplit> split;  ///< absent for a split read back from a folder
  PyEvents train, test, train_tr, valid;
  std::string protocol;
  nlohmann::json stats;
};

PySplit make_split(PreparedSplit s) {
  PySplit p;
  p.train = part_of(s, s.train_full, "train_full");
  p.test = part_of(s, s.test, "test");
  p.train_tr = part_of(s, s.train_tr, "train_tr");
  p.valid = part_of(s, s.valid, "valid");
  p.protocol = s.protocol;
  p.stats = s.stats;
  p.split = std::move(s);
  return p;
}

/// A prepared split folder read back: the final run's and the validation run's data.
PySplit load_split(const std::string& dir, const Options& read) {
  const ReadOptions ro = to_read_options(make_config(read_option_specs(), read, "the reader"));
  return on_path(dir, [&] {
    PySplit p;
    TrainData full = load_train_data(dir, SplitPart::Test, ro);
    TrainData tr = load_train_data(dir, SplitPart::Valid, ro);
    auto as_events = [](TrainData t) {
      PyEvents e;
      e.d = std::make_shared<TrainData>(std::move(t));
      return e;
    };
    auto test_events = [&](SplitPart part, const TrainData& over) {
      TestData td = load_test_data(dir, part, over.items, ro);
      TrainData t;
      t.items = over.items;
      t.train = std::move(td.test);
      t.protocol = td.protocol;
      t.source = td.source;
      return as_events(std::move(t));
    };
    p.test = test_events(SplitPart::Test, full);
    p.valid = test_events(SplitPart::Valid, tr);
    p.protocol = full.protocol;
    p.stats = full.split;
    p.train = as_events(std::move(full));
    p.train_tr = as_events(std::move(tr));
    return p;
  });
}

/// Test sequences over `items`: the events' own when their catalogue is the same, else
/// remapped (events with unknown items dropped and counted).
TestData test_data_over(const PyEvents& ev, const Vocab& items) {
  TestData td;
  td.protocol = ev.d->protocol;
  td.source = ev.d->source;
  const Vocab& v = ev.d->items;
  bool same = v.size() == items.size();
  for (int32_t i = 0; same && i < v.size(); ++i) same = v.token(i) == items.token(i);
  if (same) {
    td.test = ev.d->train;
  } else {
    EventLog log;
    log.items = v;
    log.seqs = ev.d->train;
    td.test = remap(log, items, &td.dropped_events);
  }
  return td;
}

// ---- models
// --------------------------------------------------------------------------------------

/// A copy of a bundle, through the model's own save/load (as a model file would).
ModelBundle clone_bundle(const ModelBundle& b) {
  TensorWriter w;
  b.model->save(w);
  ModelBundle c;
  c.model = create_model(b.model->type(), b.model->config());
  c.model->load(TensorReader(w.entries(), "copy of the " + b.model->type() + " model"));
  c.items = b.items;
  c.meta = b.meta;
  c.item_counts = b.item_counts;
  return c;
}

/// The largest K of the recommender table (recommender_option_specs: max_k).
constexpr int32_t kMaxK = 1000000;

/// The Recommender a model answers recommend() through: `seqrec recommend`'s settings
/// (Model::score like eval, every K up to the catalogue, no sessions).
std::shared_ptr<Recommender> item_recommender(ModelBundle b) {
  RecommenderOptions ro;
  ro.max_k = ro.default_k = std::clamp<int32_t>(b.items.size(), 1, kMaxK);
  ro.dot_product_head = false;
  ro.threads_per_request = 0;
  ro.sweep_interval_seconds = 0;
  ro.max_sessions = 1;
  return std::make_shared<Recommender>(std::move(b), ro);
}

struct PyModel {
  std::string type;
  std::string preset;
  Config config;
  std::shared_ptr<Recommender> rec;  ///< null until fitted or loaded

  PyModel(const std::string& t, const std::string& p, const Options& params)
      : type(find_model(t).type), preset(p) {
    config = configure(params);
  }

  /// The configuration of this type: defaults, the preset, then `params` (names or aliases).
  Config configure(const Options& params) const {
    const ModelInfo& info = find_model(type);
    Config c = model_config(info, preset, "");
    for (const auto& [name, value] : params) {
      if (!c.has(name)) {
        std::vector<std::string> own;
        for (const auto& s : info.params) own.push_back(s.name);
        const std::string near = cli::nearest_name(name, own);
        throw InputError("'" + name + "' is not a parameter of model '" + type + "'" +
                         (near.empty() ? "" : " (did you mean '" + near + "'?)"));
      }
      c.set(name, value, name);
    }
    return c;
  }

  std::shared_ptr<const ModelBundle> bundle() const {
    if (!rec)
      throw InputError("this " + type + " model is not fitted yet: call fit() or seqrec.load()");
    return rec->bundle();
  }
};

PyModel model_from_bundle(ModelBundle b) {
  PyModel m(b.model->type(), "", {});
  m.config = b.model->config();
  m.rec = item_recommender(std::move(b));
  return m;
}

/// The indices of the known items of `tokens` (unknown ones skipped).
std::vector<int32_t> known_items(const Vocab& v, const std::vector<std::string>& tokens) {
  std::vector<int32_t> out;
  out.reserve(tokens.size());
  for (const auto& t : tokens)
    if (const int32_t i = v.find(t); i >= 0) out.push_back(i);
  return out;
}

/// Scores every item after each session (its known items): sessions x n_items floats, a
/// row of NaN for a session without known items. Batches of queries on all threads.
void score_sessions(const Model& model, const std::vector<std::vector<int32_t>>& seqs, float* out,
                    int threads,
                    const std::function<void(int64_t, float*, std::span<const int32_t>)>& row) {
  const int64_t n = static_cast<int64_t>(seqs.size());
  const int32_t n_items = model.n_items();
  constexpr int64_t kBatch = 256;
  const int64_t n_batches = (n + kBatch - 1) / kBatch;
  ThreadScope scope(threads, ZeroThreads::AllCores);
  parallel_for(
      n_batches,
      [&](int64_t begin, int64_t end, int) {
        std::vector<float> buf;
        std::vector<std::span<const int32_t>> spans;
        std::vector<PrefixQuery> queries;
        std::vector<int64_t> rows;
        for (int64_t b = begin; b < end; ++b) {
          check_interrupt("scoring");
          spans.clear();
          queries.clear();
          rows.clear();
          for (int64_t s = b * kBatch; s < std::min(n, (b + 1) * kBatch); ++s) {
            const auto& q = seqs[static_cast<size_t>(s)];
            if (q.empty()) {
              if (out) {
                float* r = out + s * n_items;
                std::fill(r, r + n_items, std::numeric_limits<float>::quiet_NaN());
              }
              if (row) row(s, nullptr, {});
              continue;
            }
            queries.push_back({static_cast<int32_t>(spans.size()), static_cast<int32_t>(q.size())});
            spans.emplace_back(q);
            rows.push_back(s);
          }
          if (queries.empty()) continue;
          buf.resize(queries.size() * static_cast<size_t>(n_items));
          float* dst = buf.data();
          model.score(spans, queries, dst);
          for (size_t i = 0; i < rows.size(); ++i) {
            float* src = dst + i * static_cast<size_t>(n_items);
            if (out) std::copy(src, src + n_items, out + rows[i] * n_items);
            if (row) row(rows[i], src, seqs[static_cast<size_t>(rows[i])]);
          }
        }
      },
      1);
}

std::vector<std::vector<int32_t>> sessions_over(const Vocab& v,
                                                const std::vector<std::vector<std::string>>& s) {
  std::vector<std::vector<int32_t>> out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = known_items(v, s[i]);
  return out;
}

py::dict recommendation_dict(const Recommendation& r) {
  py::list items, scores;
  for (const ScoredItem& it : r.items) {
    items.append(py::str(it.item));
    scores.append(it.score);
  }
  py::dict d;
  d["items"] = items;
  d["scores"] = scores;
  d["unknown_items"] = str_list(r.unknown_items);
  d["unknown_filter_items"] = str_list(r.unknown_filter_items);
  d["k"] = r.k;
  d["exclude_seen"] = r.exclude_seen;
  d["session_length"] = r.session_length;
  d["new_session"] = r.new_session;
  d["session_reset"] = r.session_reset;
  return d;
}

RecommendOptions recommend_options(std::optional<int> k, std::optional<bool> exclude_seen,
                                   std::optional<std::vector<std::string>> allowed,
                                   std::vector<std::string> forbidden) {
  RecommendOptions o;
  if (k) o.k = *k;
  o.exclude_seen = exclude_seen;
  o.allowed_items = std::move(allowed);
  o.forbidden_items = std::move(forbidden);
  return o;
}

py::dict model_info_dict(const ModelInfo& m) {
  py::list params;
  for (const ParamSpec& s : m.params) {
    static const char* kTypes[] = {"int", "float", "bool", "str", "int_list"};
    py::dict p;
    p["name"] = s.name;
    p["type"] = kTypes[static_cast<int>(s.type)];
    p["default"] = s.default_value;
    p["help"] = s.help;
    p["range"] = range_text(s);
    p["choices"] = s.choices;
    p["aliases"] = s.aliases;
    params.append(p);
  }
  py::list presets;
  for (const Preset& pr : m.presets) {
    py::dict p;
    p["name"] = pr.name;
    p["description"] = pr.description;
    py::dict values;
    for (const auto& [k, v] : pr.values) values[py::str(k)] = v;
    p["values"] = values;
    presets.append(p);
  }
  py::dict d;
  d["type"] = m.type;
  d["description"] = m.description;
  d["params"] = params;
  d["presets"] = presets;
  d["epochs_param"] = m.epochs_param;
  return d;
}

py::list specs_list(const std::vector<ParamSpec>& specs) {
  ModelInfo m;
  m.params = specs;
  return model_info_dict(m)["params"];
}

/// Ids as text from a list of str, or from an int64 NumPy array of integer ids formatted here
/// in decimal (as str() would) without making a Python string per id: the fast path of
/// Events.from_dataframe for integer id columns.
std::vector<std::string> id_texts(const py::object& ids) {
  if (py::isinstance<py::array>(ids)) {
    const auto a = py::cast<py::array_t<int64_t, py::array::c_style | py::array::forcecast>>(ids);
    std::vector<std::string> out(static_cast<size_t>(a.size()));
    const int64_t* p = a.data();
    for (size_t i = 0; i < out.size(); ++i) out[i] = std::to_string(p[i]);
    return out;
  }
  return py::cast<std::vector<std::string>>(ids);
}

}  // namespace

PYBIND11_MODULE(_seqrec, m) {
  m.doc() = "seqrec's C++ core; use the seqrec package, not this module";

  // Exceptions: seqrec.Error and its kinds, which are also the matching built-in errors.
  g_error = PyErr_NewExceptionWithDoc("seqrec.Error", "Base of every error seqrec raises.",
                                      PyExc_Exception, nullptr);
  auto sub = [&](const char* name, const char* doc, PyObject* builtin) {
    py::tuple bases = py::make_tuple(py::handle(g_error), py::handle(builtin));
    return PyErr_NewExceptionWithDoc(name, doc, bases.ptr(), nullptr);
  };
  g_input_error = sub("seqrec.InputError",
                      "Invalid input: a malformed file or frame, an unknown id, a bad parameter.",
                      PyExc_ValueError);
  g_io_error = sub("seqrec.IoError", "An operating-system failure on a path.", PyExc_OSError);
  py::tuple nf_bases = py::make_tuple(py::handle(g_io_error), py::handle(PyExc_FileNotFoundError));
  g_not_found = PyErr_NewExceptionWithDoc("seqrec.NotFoundError",
                                          "A file or folder that was named does not exist.",
                                          nf_bases.ptr(), nullptr);
  py::tuple dir_bases = py::make_tuple(py::handle(g_io_error), py::handle(PyExc_IsADirectoryError));
  g_is_dir = PyErr_NewExceptionWithDoc("seqrec.IsADirectoryError",
                                       "A folder was named where a file is read.", dir_bases.ptr(),
                                       nullptr);
  m.attr("Error") = py::handle(g_error);
  m.attr("InputError") = py::handle(g_input_error);
  m.attr("IoError") = py::handle(g_io_error);
  m.attr("NotFoundError") = py::handle(g_not_found);
  m.attr("IsADirectoryError") = py::handle(g_is_dir);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Interrupted& e) {
      PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
    } catch (const NotFound& e) {
      PyErr_SetString(g_not_found, e.what());
    } catch (const IsDirectory& e) {
      PyErr_SetString(g_is_dir, e.what());
    } catch (const InputError& e) {
      PyErr_SetString(g_input_error, e.what());
    } catch (const IoError& e) {
      PyErr_SetString(g_io_error, e.what());
    } catch (const Error& e) {
      PyErr_SetString(g_error, e.what());
    } catch (const nlohmann::json::exception& e) {
      PyErr_SetString(g_input_error, e.what());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(PyExc_MemoryError, "out of memory");
    }
  });

  m.attr("__version__") = SEQREC_VERSION;
  m.def(
      "isa", [] { return isa::describe(); }, "The instruction-set level the kernels use.");

  // ---- option tables ----
  m.def("model_types", [] {
    py::list out;
    for (const ModelInfo& i : model_registry()) out.append(model_info_dict(i));
    return out;
  });
  m.def("option_specs", [](const std::string& table) {
    if (table == "read") return specs_list(read_option_specs());
    if (table == "prepare") return specs_list(prepare_option_specs());
    if (table == "eval") return specs_list(eval_option_specs());
    if (table == "recommender") return specs_list(recommender_option_specs());
    if (table == "generate") return specs_list(generate_option_specs());
    throw Error("no option table '" + table + "'");
  });

  // ---- events ----
  py::class_<PyEvents>(m, "Events")
      .def_property_readonly("n_events", [](const PyEvents& e) { return e.d->train.n_events(); })
      .def_property_readonly(
          "n_sequences", [](const PyEvents& e) { return static_cast<int64_t>(e.d->train.size()); })
      .def_property_readonly("n_items", [](const PyEvents& e) { return e.d->items.size(); })
      .def_property_readonly("has_times", [](const PyEvents& e) { return e.d->train.has_times(); })
      .def_property_readonly("protocol", [](const PyEvents& e) { return e.d->protocol; })
      .def_property_readonly("source", [](const PyEvents& e) { return e.d->source; })
      .def_property_readonly("layout", [](const PyEvents& e) { return e.layout; })
      .def_property_readonly("time_note", [](const PyEvents& e) { return e.time_note; })
      .def("item_ids", [](const PyEvents& e) { return str_list(e.d->items.tokens()); })
      .def("sequence_ids", [](const PyEvents& e) { return str_list(e.d->train.ids); })
      .def("offsets",
           [](py::object self) {
             const auto& s = self.cast<const PyEvents&>().d->train;
             return view(s.offsets.data(), s.offsets.size(), self);
           })
      .def("items",
           [](py::object self) {
             const auto& s = self.cast<const PyEvents&>().d->train;
             return view(s.items.data(), s.items.size(), self);
           })
      .def("times",
           [](py::object self) {
             const auto& s = self.cast<const PyEvents&>().d->train;
             return view(s.times.data(), s.times.size(), self);
           })
      .def("stats", [](const PyEvents& e) { return to_py(sequence_stats(e.d->train)); });

  m.def("read_events", [](const std::string& path, const Options& options) {
    const ReadOptions ro =
        to_read_options(make_config(read_option_specs(), options, "read_events"));
    return run_interruptible([&] {
      return on_file(path, [&] {
        ReadInfo info;
        EventLog log = read_events(path, ro, &info);
        return events_of(std::move(log), "", &info);
      });
    });
  });

  m.def("events_from_codes",
        [](py::array_t<int64_t, py::array::c_style | py::array::forcecast> seq,
           const py::object& seq_ids,
           py::array_t<int64_t, py::array::c_style | py::array::forcecast> item,
           const py::object& item_ids,
           std::optional<py::array_t<double, py::array::c_style | py::array::forcecast>> time,
           const std::string& source, const Options& options) {
          const ReadOptions ro =
              to_read_options(make_config(read_option_specs(), options, "the event reader"));
          EventColumns c;
          c.source = source;
          c.seq_ids = id_texts(seq_ids);
          c.item_ids = id_texts(item_ids);
          const int64_t n = item.size();
          if (seq.size() != n)
            throw InputError(source, 0, "session and item columns differ in length");
          const int64_t* ps = seq.data();
          const int64_t* pi = item.data();
          const double* pt = time ? time->data() : nullptr;
          if (time && time->size() != n)
            throw InputError(source, 0, "time column differs in length");
          {
            py::gil_scoped_release release;
            auto narrow = [&](const int64_t* src, std::vector<int32_t>& dst, const char* what) {
              dst.resize(static_cast<size_t>(n));
              for (int64_t e = 0; e < n; ++e) {
                if (src[e] < 0 || src[e] > std::numeric_limits<int32_t>::max())
                  throw InputError(source, e + 1,
                                   std::string("missing or invalid ") + what + " id");
                dst[static_cast<size_t>(e)] = static_cast<int32_t>(src[e]);
              }
            };
            narrow(ps, c.seq, "session");
            narrow(pi, c.item, "item");
            if (pt) c.time.assign(pt, pt + n);
          }
          return run_interruptible([&] {
            ReadInfo info;
            EventLog log = events_from_columns(std::move(c), ro, &info);
            return events_of(std::move(log), "", &info);
          });
        });

  // ---- splits ----
  py::class_<PySplit>(m, "Split")
      .def_readonly("train", &PySplit::train)
      .def_readonly("test", &PySplit::test)
      .def_readonly("train_tr", &PySplit::train_tr)
      .def_readonly("valid", &PySplit::valid)
      .def_readonly("protocol", &PySplit::protocol)
      .def_property_readonly("stats", [](const PySplit& s) { return to_py(s.stats); })
      .def("save", [](const PySplit& s, const std::string& dir, bool force) {
        if (!s.split)
          throw InputError("this split was read from a folder; it is already saved there");
        py::gil_scoped_release release;
        check_split_folder(dir, force);
        write_split(dir, *s.split, "");
      });

  m.def("prepare", [](const PyEvents& ev, const Options& options, bool force) {
    PrepareOptions po = to_prepare_options(make_config(prepare_option_specs(), options, "prepare"));
    po.force = force;
    const Config cfg = make_config(prepare_option_specs(), options, "prepare");
    return run_interruptible([&] {
      EventLog log;
      log.items = ev.d->items;
      log.seqs = ev.d->train;
      log.source = ev.d->source;
      PreparedSplit s = prepare_split(log, po);
      s.stats["options"] = cfg.to_json();
      return make_split(std::move(s));
    });
  });
  m.def("load_split", [](const std::string& dir, const Options& read) {
    return run_interruptible([&] { return load_split(dir, read); });
  });

  // ---- models ----
  py::class_<PyModel>(m, "ModelCore")
      .def(py::init<const std::string&, const std::string&, const Options&>())
      .def_readonly("type", &PyModel::type)
      .def_readonly("preset", &PyModel::preset)
      .def_property_readonly("fitted", [](const PyModel& p) { return p.rec != nullptr; })
      .def("config", [](const PyModel& p) { return to_py(p.config.to_json()); })
      .def("reconfigure",
           [](PyModel& p, const std::string& preset, const Options& params) {
             const std::string old = p.preset;
             p.preset = preset;
             try {
               p.config = p.configure(params);
             } catch (...) {
               p.preset = old;
               throw;
             }
           })
      .def(
          "fit",
          [](PyModel& p, const PyEvents& train, const PyEvents* valid, uint64_t seed, int threads,
             int patience, const std::string& valid_metric, bool progress, py::object on_epoch,
             const std::string& checkpoint, const std::string& resume,
             const std::string& item_features,
             const std::map<std::string, std::string>& feature_options) {
            const MetricAtK watched = parse_metric_at_k(valid_metric, "valid_metric");
            if (patience > 0 && !valid)
              throw InputError("patience needs validation data (valid=...)");
            if (!resume.empty()) {
              std::error_code ec;
              if (!fs::exists(resume, ec))
                throw NotFound("resume: checkpoint '" + resume + "' does not exist");
            }
            FitContext ctx;
            ctx.threads = threads;
            ctx.seed = seed;
            ctx.progress = progress;
            nlohmann::json history = nlohmann::json::array();
            std::optional<EpochValidation> ev;
            const TrainData& td = *train.d;
            if (td.train.size() == 0) throw InputError("the training data hold no sequences");
            // Item features, as `seqrec train --item-features` reads them (dssm, sasrec).
            std::optional<ItemFeatures> features;
            if (!item_features.empty()) {
              if (!model_uses_item_features(p.type))
                throw InputError("item_features: model '" + p.type +
                                 "' does not use item features (dssm and sasrec do)");
              Config fc(feature_option_specs());
              for (const auto& [k, v] : feature_options) fc.set(k, v, k);
              features.emplace(load_item_features(item_features, to_feature_read_options(fc),
                                                  td.items, !progress));
              ctx.item_features = &features->rows;
            } else if (!feature_options.empty()) {
              throw InputError("feature options need item_features=FILE");
            }
            if (valid) {
              ev.emplace(test_data_over(*valid, td.items), td, watched, threads);
              ev->attach(ctx, &history);
              ctx.patience = patience;
            }
            if (!on_epoch.is_none()) {
              ctx.after_epoch = [&](int epoch, double loss) {
                py::gil_scoped_acquire acquire;
                py::dict metrics;
                if (!history.empty() && history.back().value("epoch", -1) == epoch)
                  metrics = to_py(history.back()["metrics"]);
                return on_epoch(epoch, loss, metrics).cast<bool>();
              };
            }
            CheckpointOptions ck;
            ck.path = checkpoint.empty() ? resume : checkpoint;
            ck.resume = resume;
            ck.run = {{"seed", seed},
                      {"validation", valid != nullptr},
                      {"monitor", valid != nullptr},
                      {"valid_metric", valid ? valid_metric : ""},
                      {"patience", patience}};
            if (valid) ck.run["valid_data"] = data_fingerprint(td.items, ev->data().test);
            if (features) ck.run["item_features"] = features->table.describe();
            ck.threads = threads;
            ck.progress = progress;
            ModelBundle b = run_interruptible([&] {
              if (!ck.path.empty()) check_train_paths("", ck);
              return train_model_checkpointed(p.type, p.config, td, ctx, ck, &history);
            });
            if (features) {
              b.meta["item_features"] = features->describe();
              b.meta["item_feature_encoder"] = FeatureEncoder(features->table).to_json();
            }
            p.rec = item_recommender(std::move(b));
          },
          py::arg("train"), py::arg("valid"), py::arg("seed"), py::arg("threads"),
          py::arg("patience"), py::arg("valid_metric"), py::arg("progress"), py::arg("on_epoch"),
          py::arg("checkpoint"), py::arg("resume"), py::arg("item_features"),
          py::arg("feature_options"))
      .def("save",
           [](const PyModel& p, const std::string& path) {
             auto b = p.bundle();
             py::gil_scoped_release release;
             save_model(path, *b);
           })
      .def_property_readonly("n_items", [](const PyModel& p) { return p.bundle()->items.size(); })
      .def("item_ids", [](const PyModel& p) { return str_list(p.bundle()->items.tokens()); })
      .def("meta", [](const PyModel& p) { return to_py(p.bundle()->meta); })
      .def("item_counts",
           [](const PyModel& p) {
             auto b = p.bundle();
             return py::array_t<int64_t>(static_cast<py::ssize_t>(b->item_counts.size()),
                                         b->item_counts.data());
           })
      .def("recommend",
           [](const PyModel& p, std::vector<std::string> items, int k,
              std::optional<bool> exclude_seen, std::optional<std::vector<std::string>> allowed,
              std::vector<std::string> forbidden) {
             auto b = p.bundle();
             if (k < 1) throw InputError("k must be at least 1, got " + std::to_string(k));
             ItemsRequest req;
             req.items = std::move(items);
             req.options =
                 recommend_options(std::min<int>({k, b->items.size(), kMaxK}), exclude_seen,
                                   std::move(allowed), std::move(forbidden));
             const std::shared_ptr<Recommender> rec = p.rec;  // a fit() may replace p.rec
             Recommendation r;
             {
               py::gil_scoped_release release;
               r = rec->recommend(req);
             }
             // (ids, float32 scores, unknown ids): the least a Python caller has to unpack.
             py::list ids(r.items.size());
             py::array_t<float> scores(static_cast<py::ssize_t>(r.items.size()));
             float* ps = scores.mutable_data();
             for (size_t i = 0; i < r.items.size(); ++i) {
               ids[i] = py::str(r.items[i].item);
               ps[i] = r.items[i].score;
             }
             return py::make_tuple(ids, scores, str_list(r.unknown_items));
           })
      .def("bench_recommend",
           [](const PyModel& p, std::vector<std::string> items, int k, int repeats) {
             // The C++ side of recommend() alone, for bench/python_bench.py.
             auto b = p.bundle();
             ItemsRequest req;
             req.items = std::move(items);
             req.options.k = std::min<int>({k, b->items.size(), kMaxK});
             const std::shared_ptr<Recommender> rec = p.rec;
             py::gil_scoped_release release;
             const auto t0 = std::chrono::steady_clock::now();
             for (int i = 0; i < repeats; ++i) (void)rec->recommend(req);
             return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
           })
      .def("recommend_batch",
           [](const PyModel& p, const std::vector<std::vector<std::string>>& sessions, int k,
              std::optional<bool> exclude_seen_opt,
              const std::optional<std::vector<std::string>>& allowed_ids,
              const std::vector<std::string>& forbidden_ids, int threads) {
             auto b = p.bundle();
             if (k < 1) throw InputError("k must be at least 1, got " + std::to_string(k));
             // The filters of recommend() (the Recommender's): exclude_seen defaults to the
             // model's (yes after a sequential split), unknown filter ids are ignored.
             const bool exclude_seen =
                 exclude_seen_opt.value_or(p.rec->model_info().exclude_seen_default);
             auto sorted_known = [&](const std::vector<std::string>& ids) {
               std::vector<int32_t> v = known_items(b->items, ids);
               std::sort(v.begin(), v.end());
               v.erase(std::unique(v.begin(), v.end()), v.end());
               return v;
             };
             const std::vector<int32_t> forbidden = sorted_known(forbidden_ids);
             const std::vector<int32_t> allowed =
                 allowed_ids ? sorted_known(*allowed_ids) : std::vector<int32_t>{};
             const auto n = static_cast<py::ssize_t>(sessions.size());
             const int32_t kk = std::min<int32_t>(k, b->items.size());
             py::array_t<int32_t> idx({n, static_cast<py::ssize_t>(kk)});
             py::array_t<float> sc({n, static_cast<py::ssize_t>(kk)});
             int32_t* pi = idx.mutable_data();
             float* ps = sc.mutable_data();
             std::fill(pi, pi + n * kk, -1);
             std::fill(ps, ps + n * kk, std::numeric_limits<float>::quiet_NaN());
             const auto seqs = sessions_over(b->items, sessions);
             run_interruptible([&] {
               score_sessions(*b->model, seqs, nullptr, threads,
                              [&](int64_t s, float* row, std::span<const int32_t> seq) {
                                if (!row) return;
                                serve::TopKFilter f;
                                if (exclude_seen) {
                                  f.excluded = seq;
                                  f.drop_neg_inf = true;
                                }
                                f.forbidden = forbidden;
                                f.has_allowed = allowed_ids.has_value();
                                f.allowed = allowed;
                                const auto top =
                                    serve::select_top_k(row, b->model->n_items(), kk, f);
                                for (size_t j = 0; j < top.size(); ++j) {
                                  pi[s * kk + static_cast<int64_t>(j)] = top[j].first;
                                  ps[s * kk + static_cast<int64_t>(j)] = top[j].second;
                                }
                              });
             });
             return py::make_tuple(idx, sc);
           })
      .def(
          "score",
          [](const PyModel& p, const std::vector<std::vector<std::string>>& sessions, int threads) {
            auto b = p.bundle();
            const auto n = static_cast<py::ssize_t>(sessions.size());
            py::array_t<float> out({n, static_cast<py::ssize_t>(b->items.size())});
            float* po = out.mutable_data();
            const auto seqs = sessions_over(b->items, sessions);
            run_interruptible([&] { score_sessions(*b->model, seqs, po, threads, nullptr); });
            return out;
          })
      .def("item_embeddings",
           [](py::object self) -> py::object {
             const PyModel& p = self.cast<const PyModel&>();
             auto b = p.bundle();
             const DotProductHead h = b->model->dot_product_head();
             if (h.dim <= 0) return py::none();
             // Zero copy: the array keeps the served bundle alive through a capsule.
             auto* keep = new std::shared_ptr<const ModelBundle>(b);
             py::capsule owner(
                 keep, [](void* q) { delete static_cast<std::shared_ptr<const ModelBundle>*>(q); });
             py::array a(py::dtype::of<float>(),
                         std::vector<py::ssize_t>{static_cast<py::ssize_t>(b->items.size()),
                                                  static_cast<py::ssize_t>(h.dim)},
                         h.items, owner);
             a.attr("flags").attr("writeable") = false;
             return a;
           })
      .def("item_bias",
           [](const PyModel& p) -> py::object {
             auto b = p.bundle();
             const DotProductHead h = b->model->dot_product_head();
             if (h.dim <= 0 || !h.bias) return py::none();
             return py::array_t<float>(static_cast<py::ssize_t>(b->items.size()), h.bias);
           })
      .def("tensors", [](const PyModel& p) {
        auto b = p.bundle();
        TensorWriter w;
        b->model->save(w);
        py::dict out;
        for (const TensorEntry& e : w.entries()) {
          std::vector<py::ssize_t> shape(e.shape.begin(), e.shape.end());
          py::dtype dt = e.dtype == DType::F32   ? py::dtype::of<float>()
                         : e.dtype == DType::F64 ? py::dtype::of<double>()
                         : e.dtype == DType::I32 ? py::dtype::of<int32_t>()
                                                 : py::dtype::of<int64_t>();
          py::array a(dt, shape);
          std::memcpy(a.mutable_data(), e.data, e.nbytes);
          out[py::str(e.name)] = a;
        }
        return out;
      });

  m.def("load_model", [](const std::string& path) {
    ModelBundle b =
        run_interruptible([&] { return on_file(path, [&] { return load_model(path); }); });
    return model_from_bundle(std::move(b));
  });

  // ---- evaluation ----
  m.def("evaluate",
        [](const PyModel& p, const PyEvents* test, const std::string& path, bool validation,
           const Options& options, const Options& read, int threads, bool progress) {
          auto b = p.bundle();
          const Config cfg = make_config(eval_option_specs(), options, "evaluate");
          std::string table;
          py::object result = to_py(run_interruptible([&] {
            TestData td;
            if (test) {
              td = test_data_over(*test, b->items);
            } else {
              const ReadOptions ro =
                  to_read_options(make_config(read_option_specs(), read, "the reader"));
              td = on_path(path, [&] {
                return load_test_data(path, validation ? SplitPart::Valid : SplitPart::Test,
                                      b->items, ro);
              });
            }
            EvalOptions eo = to_eval_options(cfg, td.protocol);
            eo.threads = threads;
            eo.progress = progress;
            EvalResult r = evaluate_bundle(*b, td, eo);
            nlohmann::json j = r.to_json();
            j["model"] = {{"type", b->model->type()},
                          {"config", b->model->config().to_json()},
                          {"n_items", b->items.size()}};
            j["test"] = {{"source", td.source}, {"stats", sequence_stats(td.test)}};
            table = format_results_table({{b->model->type(), r}}, eo.cutoffs);
            return j;
          }));
          return py::make_tuple(result, table);
        });
  m.def("compare", [](const std::string& data, const std::string& out_dir,
                      const std::string& test_file, const std::string& work_dir,
                      const std::string& protocol, const std::vector<std::string>& models,
                      const std::vector<std::string>& presets, const std::vector<std::string>& sets,
                      const std::vector<std::string>& configs, int epochs, int seeds, bool curves,
                      const std::string& metric, const Options& read, const Options& prepare,
                      const Options& eval, const std::string& binary, int threads, bool quiet,
                      bool force, const Options& stop, int tune_trials, double tune_seconds,
                      const Options& tune) {
    CompareOptions o;
    o.stop_cfg = make_config(early_stopping_option_specs("", 3), stop, "compare");
    o.tune_cfg = make_config(tune_option_specs(), tune, "compare");
    o.tune_trials = tune_trials;
    o.tune_seconds = tune_seconds;
    o.data = data;
    o.out_dir = out_dir;
    o.test_file = test_file;
    o.work_dir = work_dir;
    o.protocol = protocol;
    o.models = models;
    o.presets = presets;
    o.sets = sets;
    o.configs = configs;
    o.epochs = epochs;
    o.seeds = seeds;
    o.curves = curves;
    o.metric = metric;
    o.read_cfg = make_config(read_option_specs(), read, "the reader");
    o.prepare_cfg = make_config(prepare_option_specs(), prepare, "prepare");
    o.eval_cfg = make_config(eval_option_specs(), eval, "evaluate");
    o.seqrec_binary = binary;
    o.threads = threads;
    o.quiet = quiet;
    o.force = force;
    o.command_line = "seqrec.compare(" + data + ", out=" + out_dir + ")";
    return to_py(run_interruptible([&] { return on_path(data, [&] { return run_compare(o); }); }));
  });

  m.def("tune",
        [](const std::string& data, const std::string& model, const std::string& out,
           const std::string& space, const std::string& preset, const std::string& config_file,
           const Options& tune, const Options& stop, const Options& read, int threads, bool quiet) {
          TuneOptions o;
          o.data = data;
          o.model = model;
          o.out_dir = out;
          o.space_file = space;
          o.preset = preset;
          o.config_file = config_file;
          o.tune_cfg = make_config(tune_option_specs(), tune, "tune");
          o.stop_cfg = make_config(early_stopping_option_specs("", 3), stop, "tune");
          o.read_cfg = make_config(read_option_specs(), read, "the reader");
          o.threads = threads;
          o.quiet = quiet;
          o.command_line = "seqrec.tune(" + data + ", " + model + ", out=" + out + ")";
          return to_py(run_interruptible([&] {
            return on_path(data, [&] {
              const TuneResult r = run_tune(o);
              nlohmann::json trials = nlohmann::json::array();
              for (const auto& t : r.trials) trials.push_back(t.to_json());
              const bool any = r.best >= 0;
              return nlohmann::json{
                  {"best_params", r.best_params},
                  {"best_config", r.best_config},
                  {"best_config_path", r.best_config_path},
                  {"best_trial", any ? r.trials[static_cast<size_t>(r.best)].number : -1},
                  {"best_value", any ? nlohmann::json(r.trials[static_cast<size_t>(r.best)].value)
                                     : nlohmann::json(nullptr)},
                  {"metric", r.metric},
                  {"resumed", r.resumed},
                  {"trials", trials}};
            });
          }));
        });

  // ---- live sessions ----
  py::class_<Recommender, std::shared_ptr<Recommender>>(m, "RecommenderCore")
      .def(py::init([](const PyModel& p, const Options& options, bool exact) {
        RecommenderOptions ro =
            to_recommender_options(make_config(recommender_option_specs(), options, "Recommender"));
        ro.dot_product_head = !exact;
        ModelBundle b = clone_bundle(*p.bundle());
        return std::make_shared<Recommender>(std::move(b), ro);
      }))
      .def("add_events",
           [](Recommender& r, const std::string& session, std::vector<std::string> items,
              std::vector<std::optional<double>> times, std::optional<int> k,
              std::optional<bool> exclude_seen, std::optional<std::vector<std::string>> allowed,
              std::vector<std::string> forbidden) {
             SessionRequest req;
             req.session_id = session;
             for (size_t i = 0; i < items.size(); ++i)
               req.events.push_back(
                   {std::move(items[i]), i < times.size() ? times[i] : std::nullopt});
             req.options =
                 recommend_options(k, exclude_seen, std::move(allowed), std::move(forbidden));
             Recommendation rec;
             {
               py::gil_scoped_release release;
               rec = r.add_events(req);
             }
             return recommendation_dict(rec);
           })
      .def("recommend_items",
           [](const Recommender& r, std::vector<std::string> items, std::optional<int> k,
              std::optional<bool> exclude_seen, std::optional<std::vector<std::string>> allowed,
              std::vector<std::string> forbidden) {
             ItemsRequest req;
             req.items = std::move(items);
             req.options =
                 recommend_options(k, exclude_seen, std::move(allowed), std::move(forbidden));
             Recommendation rec;
             {
               py::gil_scoped_release release;
               rec = r.recommend(req);
             }
             return recommendation_dict(rec);
           })
      .def("add_item",
           [](Recommender& r, const std::string& id, const std::string& features_json) {
             // The features come as JSON text (json.dumps of the dict on the Python side).
             const nlohmann::json f =
                 features_json.empty() ? nlohmann::json() : nlohmann::json::parse(features_json);
             AddItemResult res;
             {
               py::gil_scoped_release release;
               res = r.add_item(id, f);
             }
             py::dict d;
             d["id"] = res.id;
             d["index"] = res.index;
             d["restored"] = res.restored;
             d["unknown_values"] = str_list(res.unknown_values);
             d["live_items"] = res.live_items;
             return d;
           })
      .def("remove_item",
           [](Recommender& r, const std::string& id) {
             RemoveItemResult res;
             {
               py::gil_scoped_release release;
               res = r.remove_item(id);
             }
             py::dict d;
             d["id"] = res.id;
             d["index"] = res.index;
             d["was_added"] = res.added;
             d["live_items"] = res.live_items;
             return d;
           })
      .def("drop_session", &Recommender::drop_session, py::call_guard<py::gil_scoped_release>())
      .def("session_info",
           [](const Recommender& r, const std::string& session) -> py::object {
             std::optional<SessionInfo> s;
             {
               py::gil_scoped_release release;
               s = r.session_info(session);
             }
             if (!s) return py::none();
             py::dict d;
             d["session_id"] = s->session_id;
             d["length"] = s->length;
             d["history"] = str_list(s->history);
             d["last_event_timestamp"] = s->last_event_timestamp;
             d["idle_seconds"] = s->idle_seconds;
             d["bytes"] = s->bytes;
             return d;
           })
      .def("expire_idle", &Recommender::expire_idle, py::call_guard<py::gil_scoped_release>())
      .def("reload",
           [](Recommender& r, const std::string& path) {
             ReloadResult res;
             {
               py::gil_scoped_release release;
               res = on_file(path, [&] { return r.reload(path); });
             }
             py::dict d;
             d["generation"] = res.generation;
             d["catalogue_changed"] = res.catalogue_changed;
             d["sessions_dropped"] = res.sessions_dropped;
             d["seconds"] = res.seconds;
             return d;
           })
      .def("replace_model",
           [](Recommender& r, const PyModel& p) {
             ModelBundle b = clone_bundle(*p.bundle());
             py::gil_scoped_release release;
             r.replace_model(std::move(b));
           })
      .def("stats",
           [](const Recommender& r) {
             const RecommenderStats s = r.stats();
             py::dict d;
             d["live_sessions"] = s.live_sessions;
             d["session_bytes"] = s.session_bytes;
             d["sessions_created"] = s.sessions_created;
             d["sessions_dropped"] = s.sessions_dropped;
             d["evicted_lru"] = s.evicted_lru;
             d["evicted_memory"] = s.evicted_memory;
             d["evicted_ttl"] = s.evicted_ttl;
             d["evicted_reload"] = s.evicted_reload;
             d["events"] = s.events;
             d["unknown_items"] = s.unknown_items;
             d["reloads"] = s.reloads;
             d["reload_failures"] = s.reload_failures;
             d["model_generation"] = s.model_generation;
             d["items_added"] = s.items_added;
             d["items_retired"] = s.items_retired;
             d["catalogue_live"] = s.catalogue_live;
             d["catalogue_added_live"] = s.catalogue_added_live;
             return d;
           })
      .def("model_info", [](const Recommender& r) {
        const ServedModelInfo i = r.model_info();
        py::dict d;
        d["type"] = i.type;
        d["path"] = i.path;
        d["n_items"] = i.n_items;
        d["generation"] = i.generation;
        d["incremental"] = i.incremental;
        d["context_length"] = i.context_length;
        d["history_length"] = i.history_length;
        d["exclude_seen_default"] = i.exclude_seen_default;
        d["scoring"] = to_py(i.scoring);
        d["catalogue"] = to_py(i.catalogue);
        d["config"] = to_py(i.config);
        return d;
      });
}
