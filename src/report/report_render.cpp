// The compare report's views: plots, Markdown and HTML, all rendered from results.json.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/text_format.hpp"
#include "io/output_file.hpp"
#include "report/report.hpp"
#include "report/svg.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// ------------------------------------------------------------------ number formatting
std::string fmtf(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double num(const json& j, double fallback = std::nan("")) {
  return j.is_number() ? j.get<double>() : fallback;
}

std::string fmt_metric(const json& ms) {
  const double m = num(ms.value("mean", json()));
  if (!std::isfinite(m)) return "–";
  std::string s = fmtf("%.4f", m);
  const double sd = num(ms.value("std", json()));
  if (std::isfinite(sd)) s += " ± " + fmtf("%.4f", sd);
  return s;
}

std::string fmt_p(const json& p) {
  if (!p.is_number()) return "n/a";
  const double x = p.get<double>();
  if (x == 0) return "< 1e-300";
  if (x < 1e-4) return fmtf("%.1e", x);
  return fmtf("%.4f", x);
}

std::string fmt_seconds(double s) {
  if (!std::isfinite(s)) return "–";
  if (s < 10) return fmtf("%.2f", s);
  if (s < 100) return fmtf("%.1f", s);
  return fmtf("%.0f", s);
}

/// Mean ± std of seconds, both with the decimals the mean's size calls for.
std::string fmt_seconds_ms(const json& ms) {
  const double m = num(ms.value("mean", json()));
  if (!std::isfinite(m)) return "–";
  const char* f = m < 10 ? "%.2f" : m < 100 ? "%.1f" : "%.0f";
  std::string s = fmtf(f, m);
  const double sd = num(ms.value("std", json()));
  if (std::isfinite(sd)) s += " ± " + fmtf(f, sd);
  return s;
}

std::string fmt_mib(double bytes) {
  if (!std::isfinite(bytes)) return "–";
  const double m = bytes / 1048576.0;
  return m < 10 ? fmtf("%.2f MiB", m) : fmtf("%.1f MiB", m);
}

std::string fmt_share(double x) {
  return fmtf("%.1f%%", 100.0 * x);
}

// ------------------------------------------------------------------ a tiny document model
struct Block {
  enum Kind { Heading, Para, List, Table, Figure, Code } kind;
  int level = 2;
  std::string text;                 // heading, paragraph, code, figure caption
  std::vector<std::string> items;   // list
  std::vector<std::string> header;  // table
  std::vector<std::vector<std::string>> rows;
  std::string align;      // per column: 'l' or 'r'
  std::string file, svg;  // figure
};

Block make_block(Block::Kind kind, int level = 0, std::string text = "") {
  Block b{};
  b.kind = kind;
  b.level = level;
  b.text = std::move(text);
  return b;
}

struct Doc {
  std::string title;
  std::vector<Block> blocks;
  void h(int level, std::string t) {
    blocks.push_back(make_block(Block::Heading, level, std::move(t)));
  }
  void p(std::string t) { blocks.push_back(make_block(Block::Para, 0, std::move(t))); }
  void list(std::vector<std::string> items) {
    Block b = make_block(Block::List);
    b.items = std::move(items);
    blocks.push_back(std::move(b));
  }
  void table(std::vector<std::string> header, std::vector<std::vector<std::string>> rows,
             std::string align) {
    Block b = make_block(Block::Table);
    b.header = std::move(header);
    b.rows = std::move(rows);
    b.align = std::move(align);
    blocks.push_back(std::move(b));
  }
  void code(std::string t) { blocks.push_back(make_block(Block::Code, 0, std::move(t))); }
  void figure(const std::string& file, const std::string& svg, std::string caption) {
    Block b = make_block(Block::Figure);
    b.file = file;
    b.svg = svg;
    b.text = std::move(caption);
    blocks.push_back(std::move(b));
  }
};

/// Inline markup of the texts: **bold**, *emphasis* and `code`.
std::string inline_html(const std::string& s) {
  const std::string e = svg::escape(s);
  std::string out;
  bool bold = false, em = false, code = false;
  for (size_t i = 0; i < e.size(); ++i) {
    if (e[i] == '`') {
      out += code ? "</code>" : "<code>";
      code = !code;
    } else if (!code && e[i] == '*' && i + 1 < e.size() && e[i + 1] == '*') {
      out += bold ? "</strong>" : "<strong>";
      bold = !bold;
      ++i;
    } else if (!code && e[i] == '*') {
      out += em ? "</em>" : "<em>";
      em = !em;
    } else {
      out += e[i];
    }
  }
  if (code) out += "</code>";
  if (em) out += "</em>";
  if (bold) out += "</strong>";
  return out;
}

/// A table cell: as inline_html, with a "± sd" part set on its own smaller line (keeps wide
/// metric tables narrow enough for a page).
std::string cell_html(const std::string& s) {
  const std::string pm = " ± ";
  const auto at = s.find(pm);
  if (at == std::string::npos) return inline_html(s);
  // "**m ± sd**" or "m ± sd †": keep the bold markers and the marker with the mean.
  std::string mean = s.substr(0, at), rest = s.substr(at + pm.size()), suffix;
  const bool bold = mean.rfind("**", 0) == 0;
  if (bold) mean = mean.substr(2);
  const auto sp = rest.find(' ');
  if (sp != std::string::npos) {
    suffix = rest.substr(sp);
    rest = rest.substr(0, sp);
  }
  if (bold && rest.size() >= 2 && rest.compare(rest.size() - 2, 2, "**") == 0)
    rest.resize(rest.size() - 2);
  std::string m = inline_html(mean + suffix);
  if (bold) m = "<strong>" + m + "</strong>";
  return m + "<span class=\"sd\">± " + inline_html(rest) + "</span>";
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out;
}

std::string render_md(const Doc& d) {
  std::string out = "# " + d.title + "\n";
  for (const Block& b : d.blocks) {
    out += "\n";
    switch (b.kind) {
      case Block::Heading:
        out += std::string(static_cast<size_t>(b.level), '#') + " " + b.text + "\n";
        break;
      case Block::Para:
        out += b.text + "\n";
        break;
      case Block::List:
        for (const auto& it : b.items) out += "- " + it + "\n";
        break;
      case Block::Code:
        out += "```\n" + b.text + "\n```\n";
        break;
      case Block::Table: {
        std::string line = "|", sep = "|";
        for (size_t c = 0; c < b.header.size(); ++c) {
          line += " " + md_cell(b.header[c]) + " |";
          sep += (c < b.align.size() && b.align[c] == 'r') ? "---:|" : "---|";
        }
        out += line + "\n" + sep + "\n";
        for (const auto& r : b.rows) {
          std::string l = "|";
          for (const auto& cell : r) l += " " + md_cell(cell) + " |";
          out += l + "\n";
        }
        break;
      }
      case Block::Figure:
        out += "![" + b.file + "](" + b.file + ")\n\n*" + b.text + "*\n";
        break;
    }
  }
  return out;
}

std::string strip_xml_prolog(const std::string& svg) {
  const auto at = svg.find("<svg");
  return at == std::string::npos ? svg : svg.substr(at);
}

std::string render_html(const Doc& d) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
      svg::escape(d.title) +
      "</title>\n<style>\n"
      "body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
      "color:#222;line-height:1.45}\n"
      "h1{font-size:1.6em;border-bottom:2px solid #0072B2;padding-bottom:.2em}\n"
      "h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #ddd}\n"
      "h3{font-size:1.1em;margin-top:1.4em}\n"
      "table{border-collapse:collapse;margin:.8em 0;font-size:.9em}\n"
      "th,td{border:1px solid #ccc;padding:.3em .6em}\nth{background:#f2f5f8}\n"
      "td.r{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
      "tr:nth-child(even) td{background:#fafafa}\n"
      "code{background:#f3f3f3;padding:0 .25em;border-radius:3px;font-size:.92em}\n"
      "pre{background:#f3f3f3;padding:.7em;white-space:pre-wrap;overflow-wrap:anywhere;"
      "font-size:.85em}\n"
      ".sd{display:block;font-size:.78em;color:#666}\n.wide{overflow-x:auto}\n"
      "figure{margin:1em 0;overflow-x:auto}\nfigcaption{font-size:.9em;color:#555}\n"
      "</style>\n</head>\n<body>\n<h1>" +
      inline_html(d.title) + "</h1>\n";
  for (const Block& b : d.blocks) {
    switch (b.kind) {
      case Block::Heading: {
        const std::string tag = "h" + std::to_string(std::min(6, std::max(2, b.level)));
        out += "<" + tag + ">" + inline_html(b.text) + "</" + tag + ">\n";
        break;
      }
      case Block::Para:
        out += "<p>" + inline_html(b.text) + "</p>\n";
        break;
      case Block::List:
        out += "<ul>\n";
        for (const auto& it : b.items) out += "<li>" + inline_html(it) + "</li>\n";
        out += "</ul>\n";
        break;
      case Block::Code:
        out += "<pre>" + svg::escape(b.text) + "</pre>\n";
        break;
      case Block::Table: {
        out += "<div class=\"wide\"><table>\n<tr>";
        for (const auto& h : b.header) out += "<th>" + inline_html(h) + "</th>";
        out += "</tr>\n";
        for (const auto& r : b.rows) {
          out += "<tr>";
          for (size_t c = 0; c < r.size(); ++c)
            out +=
                std::string(c < b.align.size() && b.align[c] == 'r' ? "<td class=\"r\">" : "<td>") +
                cell_html(r[c]) + "</td>";
          out += "</tr>\n";
        }
        out += "</table></div>\n";
        break;
      }
      case Block::Figure:
        out += "<figure>\n" + strip_xml_prolog(b.svg) + "<figcaption>" + inline_html(b.text) +
               "</figcaption>\n</figure>\n";
        break;
    }
  }
  out += "</body>\n</html>\n";
  return out;
}

// ------------------------------------------------------------------ plots
const json& models_of(const json& r) {
  static const json empty = json::array();
  return r.contains("models") ? r["models"] : empty;
}

std::string color_of(size_t i) {
  return svg::palette(i);
}

/// An empty series for model i of the results.
svg::Series model_series(const json& models, size_t i) {
  svg::Series s;
  s.name = models[i]["label"].get<std::string>();
  s.color = color_of(i);
  return s;
}

std::string plot_caption(const std::string& name, const json& r) {
  const std::string metric = r["headline"].value("label", "");
  if (name == "metric_vs_k.svg")
    return "Test metrics at list lengths K (mean over seeds), from every prediction's rank.";
  if (name == "learning_curves.svg")
    return "Validation " + metric +
           " after every epoch of a separate validation run (trained on train_tr, measured on "
           "valid; the test set is not used).";
  if (name == "by_length.svg")
    return "Test " + metric + " by " + r["by_length"].value("what", std::string("history length")) +
           "; bars are means over seeds, whiskers ± one standard deviation.";
  if (name == "by_popularity.svg")
    return "Test " + metric + " when the target is a popular item or a long-tail item (" +
           r["by_popularity"].value("definition", std::string()) + ").";
  if (name == "time_vs_accuracy.svg")
    return "Training (fit) time against test " + metric +
           " (mean ± std over seeds; log time axis, times below 1 ms drawn at 1 ms).";
  return "";
}
/// One bar series per model: the mean ± std of each of its `key` buckets.
void add_bucket_series(svg::BarChart& c, const nlohmann::json& models, const char* key) {
  for (size_t i = 0; i < models.size(); ++i) {
    svg::Series s = model_series(models, i);
    for (const auto& g : models[i][key]) {
      s.y.push_back(num(g["mean"]));
      s.y_err.push_back(num(g["std"], 0.0));
    }
    c.series.push_back(std::move(s));
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> compare_plots(const json& r) {
  std::vector<std::pair<std::string, std::string>> out;
  const json& models = models_of(r);
  const std::string hit = r["protocol"].value("hit_name", std::string("Recall"));
  const std::string metric = r["headline"].value("label", std::string());

  {  // metric vs K
    std::vector<svg::LineChart> panels;
    const std::vector<std::pair<std::string, std::string>> kinds{
        {"recall", hit}, {"mrr", "MRR"}, {"ndcg", "NDCG"}};
    for (const auto& [key, label] : kinds) {
      svg::LineChart c;
      c.title = label + "@K";
      c.x.label = "K";
      c.y.label = label + "@K";
      for (size_t i = 0; i < models.size(); ++i) {
        const json& mk = models[i]["metric_vs_k"];
        svg::Series s = model_series(models, i);
        for (const auto& k : mk["k"]) s.x.push_back(k.get<double>());
        for (const auto& y : mk[key]) s.y.push_back(num(y));
        c.series.push_back(std::move(s));
      }
      panels.push_back(std::move(c));
    }
    out.emplace_back("metric_vs_k.svg", svg::line_charts(panels, "", 3));
  }
  {  // learning curves
    svg::LineChart c;
    c.title = "Validation " + metric + " per epoch";
    c.x.label = "epoch";
    c.y.label = "validation " + metric;
    for (size_t i = 0; i < models.size(); ++i) {
      const json& cv = models[i]["curve"];
      if (!cv.is_object()) continue;
      svg::Series s = model_series(models, i);
      for (const auto& e : cv["epochs"]) s.x.push_back(e.get<double>());
      for (const auto& y : cv["values"]) s.y.push_back(num(y));
      c.series.push_back(std::move(s));
    }
    if (!c.series.empty())
      out.emplace_back("learning_curves.svg", svg::line_charts({c}, "", 1, 600));
  }
  {  // by history length
    svg::BarChart c;
    c.title = metric + " by " + r["by_length"].value("what", std::string("history length"));
    c.y.label = metric;
    for (const auto& b : r["by_length"]["buckets"]) {
      c.groups.push_back(b["label"].get<std::string>());
      c.group_notes.push_back("n=" + grouped_count(b["n"].get<int64_t>()));
    }
    add_bucket_series(c, models, "by_length");
    out.emplace_back("by_length.svg", svg::bar_chart(c));
  }
  {  // popular vs long tail
    svg::BarChart c;
    c.title = metric + ": popular vs long-tail targets";
    c.y.label = metric;
    for (const auto& g : r["by_popularity"]["groups"]) {
      c.groups.push_back(g["label"].get<std::string>());
      c.group_notes.push_back("n=" + grouped_count(g["n"].get<int64_t>()) + " (" +
                              fmt_share(num(g["share"])) + " of targets)");
    }
    add_bucket_series(c, models, "by_popularity");
    out.emplace_back("by_popularity.svg", svg::bar_chart(c));
  }
  {  // training time vs accuracy
    svg::ScatterChart c;
    c.title = "Training time vs " + metric;
    c.x.label = "training (fit) seconds";
    c.x.log = true;
    c.y.label = "test " + metric;
    const std::string key = r["headline"].value("metric", std::string());
    for (size_t i = 0; i < models.size(); ++i) {
      svg::Series s = model_series(models, i);
      const json& ms = models[i]["metrics"].value(key, json::object());
      s.x.push_back(std::max(1e-3, num(models[i]["cost"]["fit_seconds"]["mean"], 1e-3)));
      s.y.push_back(num(ms.value("mean", json())));
      s.y_err.push_back(num(ms.value("std", json()), 0.0));
      c.series.push_back(std::move(s));
    }
    out.emplace_back("time_vs_accuracy.svg", svg::scatter_chart(c));
  }
  return out;
}

namespace {

/// The report as a document (shared by Markdown and HTML).
Doc build_doc(const json& r, const std::vector<std::pair<std::string, std::string>>& plots,
              bool for_html) {
  Doc d;
  const json& models = models_of(r);
  const json& proto = r["protocol"];
  const std::string data_name = [&] {
    if (!r["data"].value("name", std::string()).empty())
      return r["data"]["name"].get<std::string>();
    std::string in = r["data"].value("input", std::string());
    if (in.empty()) in = r["data"].value("split_dir", std::string());
    return fs::path(in).filename().string();
  }();
  d.title =
      "seqrec compare: " + data_name + " (" + proto.value("name", std::string()) + " protocol)";
  std::string labels;
  for (const auto& m : models)
    labels += (labels.empty() ? "" : ", ") + m["label"].get<std::string>();
  d.p(std::to_string(models.size()) + " models (" + labels + "), " +
      std::to_string(r["seeds"].size()) + " seeds each, evaluated on the same " +
      grouped_count(proto["n_predictions"].get<int64_t>()) + " predictions. Generated by seqrec " +
      r.value("seqrec_version", std::string()) + " on " + r.value("generated", std::string()) +
      " in " + fmt_seconds(num(r.value("total_seconds", json()))) + " s.");
  if (!r.value("command", std::string()).empty()) d.code(r["command"].get<std::string>());

  // Headline ranking.
  const std::string head = r["headline"]["metric"].get<std::string>();
  const std::string head_label = r["headline"]["label"].get<std::string>();
  {
    std::vector<std::pair<double, std::string>> rank;
    for (const auto& m : models) {
      const json& ms = m["metrics"].value(head, json::object());
      rank.emplace_back(num(ms.value("mean", json()), -1),
                        m["label"].get<std::string>() + " " + fmt_metric(ms));
    }
    std::stable_sort(rank.begin(), rank.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string s = "**" + head_label + "** (test, mean ± std over seeds): ";
    for (size_t i = 0; i < rank.size(); ++i) s += (i ? " > " : "") + rank[i].second;
    d.p(s + ".");
  }
  // Models cut short (results.json "warnings"): said next to the ranking they may upset.
  for (const auto& w : r.value("warnings", json::array()))
    d.p("**Warning:** " + w.get<std::string>());

  d.h(2, "Protocol");
  std::vector<std::string> desc;
  for (const auto& s : proto["description"]) desc.push_back(s.get<std::string>());
  if (!proto.value("full_ranking", true)) desc.front() = "**" + desc.front() + "**";
  d.list(desc);

  d.h(2, "Data");
  d.p("Source: " + r["data"].value("note", std::string()) +
      ". Catalogue: " + grouped_count(r["data"]["n_items"].get<int64_t>()) +
      " items. Split folder: `" + r["data"].value("split_dir", std::string()) + "`.");
  {
    std::vector<std::vector<std::string>> rows;
    const std::vector<std::pair<std::string, std::string>> parts{
        {"train_full", "training (train_full)"},
        {"test", "test"},
        {"train_tr", "validation training (train_tr)"},
        {"valid", "validation (valid)"}};
    for (const auto& [key, name] : parts) {
      const json& s = r["data"]["parts"].value(key, json::object());
      if (s.empty()) continue;
      const json len = s.value("length", json::object());
      rows.push_back({name, grouped_count(s.value("sequences", 0LL)),
                      grouped_count(s.value("events", 0LL)), grouped_count(s.value("items", 0LL)),
                      fmtf("%.2f", len.value("mean", 0.0)), fmtf("%.0f", len.value("median", 0.0)),
                      grouped_count(len.value("max", 0LL))});
    }
    d.table({"part", "sequences", "events", "distinct items", "mean length", "median length",
             "max length"},
            rows, "lrrrrrr");
  }
  {
    std::vector<std::string> steps;
    for (const auto& st : r["data"]["steps"]) {
      std::string line = "`" + st.value("step", std::string("?")) + "`:";
      for (auto it = st.begin(); it != st.end(); ++it) {
        if (it.key() == "step") continue;
        line += " " + it.key() + " = " +
                (it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
      }
      steps.push_back(line);
    }
    if (!steps.empty()) {
      d.p("Preparation steps (from split.json):");
      d.list(steps);
    }
  }

  // Results table.
  d.h(2, "Results");
  const json& sig = r["significance"];
  d.p("Test metrics, mean ± standard deviation over seeds. **Bold**: the best mean in the "
      "column. †: not significantly worse than the best (" +
      sig.value("primary", std::string()) + " on " + sig.value("unit", std::string()) +
      ", p-values adjusted by " + sig.value("correction", std::string()) +
      ", α = " + fmtf("%.2f", num(sig["alpha"])) +
      "); a cell without † is significantly worse than the best. The p-values are in the "
      "Significance section.");
  {
    std::vector<std::string> header{"Model"};
    std::string align = "l";
    for (const auto& c : r["columns"]) {
      header.push_back(c["label"].get<std::string>());
      align += 'r';
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : models) {
      const std::string label = m["label"].get<std::string>();
      std::vector<std::string> row{label};
      for (const auto& sc : sig["columns"]) {
        const json& ms = m["metrics"].value(sc["metric"].get<std::string>(), json::object());
        std::string cell = fmt_metric(ms);
        bool best = false;
        for (const auto& b : sc["best_all"]) best = best || b.get<std::string>() == label;
        if (best) {
          cell = "**" + cell + "**";
        } else {
          for (const auto& t : sc["tests"])
            if (t["model"].get<std::string>() == label && !t["significant"].get<bool>())
              cell += " †";
        }
        row.push_back(cell);
      }
      rows.push_back(row);
    }
    d.table(header, rows, align);
  }
  {
    // Convergence: how long each model trained, next to its accuracy (docs/compare.md).
    std::vector<std::vector<std::string>> rows;
    bool any = false;
    for (const auto& m : models) {
      const json& c = m.value("convergence", json());
      const json& ms = m["metrics"].value(head, json::object());
      if (!c.is_object()) {
        rows.push_back({m["label"].get<std::string>(), fmt_metric(ms), "–", "–", "–", "–",
                        "one pass (no epochs)"});
        continue;
      }
      any = true;
      auto cell = [&](const char* k) {
        const json& v = c.value(k, json());
        return v.is_number() ? std::to_string(v.get<int64_t>()) : std::string("–");
      };
      std::string status;
      const json si = c.value("still_improving", json());
      if (si == true)
        status = "**⚠ still improving at the last epoch: not converged**";
      else if (c.value("stopped_early", false))
        status = "converged (stopped early)";
      else if (si == false)
        status = "converged (best before the last epoch)";
      else
        status = c.value("note", std::string("unknown"));
      rows.push_back({m["label"].get<std::string>(), fmt_metric(ms), cell("epoch_budget"),
                      cell("epochs_run"), cell("best_epoch"), cell("final_epochs"), status});
    }
    if (any) {
      d.h(3, "Convergence");
      d.p("Models that train in epochs first run on the validation pair (train_tr → valid) "
          "with early stopping on the validation metric; the seed runs then train the full "
          "training data for the best epoch count (docs/compare.md). A model whose validation "
          "metric was still improving at the end of its budget did not converge, and its rank "
          "may be too low.");
      d.table({"Model", head_label + " (test)", "epoch budget", "epochs run (validation)",
               "best epoch", "epochs trained (test runs)", "convergence"},
              rows, "lrrrrrl");
    }
    // Tuned settings (compare --tune).
    std::vector<std::vector<std::string>> trows;
    for (const auto& m : models) {
      const json& t = m.value("tuning", json());
      if (!t.is_object()) continue;
      std::string params;
      for (auto it = t["params"].begin(); it != t["params"].end(); ++it)
        params += (params.empty() ? "" : ", ") + it.key() + " = " +
                  (it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
      trows.push_back({m["label"].get<std::string>(), std::to_string(t.value("trials", 0)),
                       fmtf("%.4f", t.value("best_value", 0.0)),
                       fmtf("%.0f", t.value("seconds", 0.0)), params});
    }
    if (!trows.empty()) {
      d.h(3, "Tuned settings");
      d.p("Each model was tuned first on the validation pair (`compare --tune`, the TPE "
          "sampler of `seqrec tune` over the model's default space) and compared with the "
          "best configuration found.");
      d.table({"Model", "trials", "best validation", "seconds", "tuned parameters"}, trows,
              "lrrrl");
    }
  }
  {
    // Beyond accuracy: coverage and popularity at the largest cutoff.
    const int kmax = proto["cutoffs"].back().get<int>();
    const std::string cov = "coverage@" + std::to_string(kmax),
                      pop = "avg_pop@" + std::to_string(kmax);
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : models)
      rows.push_back({m["label"].get<std::string>(),
                      fmt_metric(m["metrics"].value(cov, json::object())),
                      fmt_metric(m["metrics"].value(pop, json::object()))});
    d.p("Beyond accuracy, at K = " + std::to_string(kmax) +
        ": catalogue coverage (share of items recommended in some top-K list) and the mean "
        "relative training popularity of the recommended items (1 = the most popular item).");
    d.table({"Model", "Coverage@" + std::to_string(kmax), "Popularity@" + std::to_string(kmax)},
            rows, "lrr");
  }

  // Warm and cold targets (a split with cold items: prepare --cold-items), and the
  // target's training frequency.
  if (r.contains("target_groups") && r["target_groups"].is_object()) {
    const json& tg = r["target_groups"];
    const int64_t n_cold = tg.value("cold_items", 0LL);
    d.h(2, n_cold > 0 ? "Warm and cold targets" : "Targets by training frequency");
    const bool seq = proto.value("name", std::string()).rfind("sequential", 0) == 0;
    const std::string hit = seq ? "hr" : "recall";
    const std::string hit_label = seq ? "HR" : "Recall";
    const std::vector<std::pair<std::string, std::string>> cols{{hit + "@20", hit_label + "@20"},
                                                                {"ndcg@10", "NDCG@10"}};
    d.p((n_cold > 0 ? "The split holds " + grouped_count(n_cold) +
                          " cold items: none of their events is in training, they stay test "
                          "targets (`prepare --cold-items`). "
                    : std::string()) +
        "Test metrics by the target: warm or cold, and its number of training events. "
        "*cannot score*: the model knows items by their id only and these targets have no "
        "training event. *Chance*: the same metric for a random ranking of the same "
        "candidates.");
    std::vector<std::string> header{"Model", "Targets", "Predictions"};
    std::string align = "llr";
    for (const auto& [key, label] : cols) {
      header.push_back(label);
      align += 'r';
    }
    for (const auto& [key, label] : cols) {
      header.push_back("Chance " + label);
      align += 'r';
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : tg["models"]) {
      for (const auto& g : m["groups"]) {
        const std::string kind = g.value("kind", std::string());
        std::vector<std::string> row{m.value("label", std::string()),
                                     kind == "cold_split"
                                         ? g.value("name", std::string())
                                         : "train events " + g.value("name", std::string()),
                                     grouped_count(g.value("n_predictions", 0LL))};
        for (const auto& [key, label] : cols) {
          if (!g.value("scorable", true))
            row.push_back("cannot score");
          else
            row.push_back(fmt_metric(g["metrics"].value(key, json::object())));
        }
        for (const auto& [key, label] : cols) {
          const std::string ck = key == hit + "@20" ? "recall@20" : key;
          const double c = num(g["chance"].value(ck, json()));
          row.push_back(std::isfinite(c) ? fmtf("%.4f", c) : "–");
        }
        rows.push_back(row);
      }
    }
    d.table(header, rows, align);
  }

  d.h(2, "Cost: time, memory, size");
  {
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : models) {
      const json& c = m["cost"];
      rows.push_back({m["label"].get<std::string>(), fmt_seconds_ms(c["fit_seconds"]),
                      fmt_seconds_ms(c["process_seconds"]), fmt_seconds_ms(c["eval_seconds"]),
                      fmt_mib(num(c["peak_rss_bytes"]["max"])),
                      fmt_mib(num(c["model_bytes"]["mean"]))});
    }
    d.table({"Model", "training (fit) s", "training process s", "evaluation s",
             "peak RSS of training", "model file"},
            rows, "lrrrrr");
  }
  {
    const json& mc = r["machine"];
    std::string threads = mc.value("threads", 0) == 0 ? std::string("all cores")
                                                      : std::to_string(mc.value("threads", 0));
    d.p("Seconds are wall-clock, mean ± std over seeds. *Training (fit)*: the model's fit "
        "alone. *Training process*: the whole `seqrec train` child process (reading the split, "
        "fitting, writing the model file). *Evaluation*: ranking the whole catalogue for every "
        "test prediction, in the compare process. *Peak RSS*: the largest resident memory of "
        "the training process over the seeds, as the kernel reports it for the child "
        "(`wait4` ru_maxrss), so it includes the training data and the program itself; "
        "evaluation is not included. *Model file*: size of the saved model. Machine: " +
        mc.value("cpu", std::string("unknown CPU")) +
        (mc.value("isa", std::string()).empty() ? std::string()
                                                : " (" + mc["isa"].get<std::string>() + ")") +
        ", " + std::to_string(mc.value("logical_cpus", 0)) + " logical CPUs, threads: " + threads +
        ", load average " + fmtf("%.1f", mc.value("load_average_1min_at_start", 0.0)) +
        " at the start" +
        (mc.contains("load_average_1min_at_end")
             ? " and " + fmtf("%.1f", mc.value("load_average_1min_at_end", 0.0)) + " at the end"
             : std::string()) +
        " (a load above the number of CPUs means other programs shared them: timings are then "
        "pessimistic).");
  }

  // Plots.
  d.h(2, "Plots");
  for (const auto& [file, doc] : plots) {
    std::string title = file;
    if (file == "metric_vs_k.svg") title = "Metrics vs K";
    if (file == "learning_curves.svg") title = "Learning curves";
    if (file == "by_length.svg") title = "Accuracy by history length";
    if (file == "by_popularity.svg") title = "Popular vs long-tail targets";
    if (file == "time_vs_accuracy.svg") title = "Training time vs accuracy";
    d.h(3, title);
    d.figure(file, doc, plot_caption(file, r));
    if (file == "by_length.svg") {
      std::vector<std::string> header{"Model"};
      std::string align = "l";
      for (const auto& b : r["by_length"]["buckets"]) {
        header.push_back(b["label"].get<std::string>() +
                         " (n=" + grouped_count(b["n"].get<int64_t>()) + ")");
        align += 'r';
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& m : models) {
        std::vector<std::string> row{m["label"].get<std::string>()};
        for (const auto& g : m["by_length"]) row.push_back(fmt_metric(g));
        rows.push_back(row);
      }
      d.table(header, rows, align);
    }
    if (file == "by_popularity.svg") {
      std::vector<std::string> header{"Model"};
      std::string groups;
      for (const auto& g : r["by_popularity"]["groups"]) {
        header.push_back(g["label"].get<std::string>());
        groups += (groups.empty() ? "" : "; ") + g["label"].get<std::string>() + ": " +
                  grouped_count(g["items"].get<int64_t>()) + " items, " +
                  fmt_share(num(g["train_event_share"])) + " of the training events, " +
                  fmt_share(num(g["share"])) +
                  " of the test targets (n = " + grouped_count(g["n"].get<int64_t>()) + ")";
      }
      d.p("Groups: " + groups + ".");
      std::vector<std::vector<std::string>> rows;
      for (const auto& m : models) {
        std::vector<std::string> row{m["label"].get<std::string>()};
        for (const auto& g : m["by_popularity"]) row.push_back(fmt_metric(g));
        rows.push_back(row);
      }
      d.table(header, rows, "lrr");
    }
    if (file == "learning_curves.svg") {
      std::vector<std::string> notes;
      for (const auto& m : models) {
        const json& cv = m["curve"];
        if (cv.is_object())
          notes.push_back(m["label"].get<std::string>() + ": best validation " + head_label + " " +
                          fmtf("%.4f", num(cv["best_value"])) + " at epoch " +
                          std::to_string(cv["best_epoch"].get<int>()) + " of " +
                          std::to_string(cv["epochs"].back().get<int>()));
        else
          notes.push_back(m["label"].get<std::string>() + ": no curve, " +
                          m.value("curve_note", std::string()));
      }
      d.list(notes);
    }
  }
  bool any_curve = false;
  for (const auto& p : plots) any_curve = any_curve || p.first == "learning_curves.svg";
  if (!any_curve) {
    std::vector<std::string> notes;
    for (const auto& m : models)
      notes.push_back(m["label"].get<std::string>() + ": " + m.value("curve_note", std::string()));
    d.p("No learning curves:");
    d.list(notes);
  }

  // Significance details.
  d.h(2, "Significance");
  d.p("For every metric column the model with the best mean is compared with each other model "
      "on the same predictions: each prediction's metric value (averaged over the seeds of a "
      "model) forms a pair. Tests: " +
      sig.value("primary", std::string()) +
      " and, as a check that does not assume normal "
      "differences, the " +
      sig.value("secondary", std::string()) +
      " (zero differences dropped; exact for up to 50 untied differences, otherwise the normal "
      "approximation with tie and continuity corrections). p-values are " +
      "adjusted (" + sig.value("correction", std::string()) +
      "). Cells: adjusted p (t-test) / "
      "adjusted p (Wilcoxon); † marks p ≥ " +
      fmtf("%.2f", num(sig["alpha"])) + " (t-test).");
  {
    std::vector<std::string> header{"Metric", "best"};
    std::string align = "ll";
    for (const auto& m : models) {
      header.push_back(m["label"].get<std::string>());
      align += 'r';
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& sc : sig["columns"]) {
      std::vector<std::string> row{sc["label"].get<std::string>(), sc["best"].get<std::string>()};
      for (const auto& m : models) {
        const std::string label = m["label"].get<std::string>();
        std::string cell = "best";
        for (const auto& t : sc["tests"])
          if (t["model"].get<std::string>() == label)
            cell = fmt_p(t["p_t_holm"]) + " / " + fmt_p(t["p_wilcoxon_holm"]) +
                   (t["significant"].get<bool>() ? "" : " †");
        row.push_back(cell);
      }
      rows.push_back(row);
    }
    d.table(header, rows, align);
  }

  // What was run.
  d.h(2, "What was run");
  {
    std::vector<std::string> items;
    for (const auto& m : models) {
      std::string s =
          "**" + m["label"].get<std::string>() + "**: model `" + m["type"].get<std::string>() + "`";
      if (!m.value("preset", std::string()).empty())
        s += ", preset `" + m["preset"].get<std::string>() + "`";
      if (!m.value("config_file", std::string()).empty())
        s += ", config file `" + m["config_file"].get<std::string>() + "`";
      const json& ch = m["config_changes"];
      if (ch.empty()) {
        s += ", default parameters";
      } else {
        s += "; parameters that differ from the defaults:";
        for (auto it = ch.begin(); it != ch.end(); ++it)
          s += " `" + it.key() + "=" +
               (it.value().is_string() ? it.value().get<std::string>() : it.value().dump()) + "`";
      }
      items.push_back(s);
    }
    d.list(items);
    std::string cmds;
    for (const auto& m : models) {
      for (const auto& run : m["runs"]) {
        cmds += run["command"].get<std::string>() + "\n";
        break;  // the other seeds differ only in --seed
      }
      if (m["curve"].is_object()) cmds += m["curve"]["command"].get<std::string>() + "\n";
    }
    d.p("Training commands (first seed of each model; the other seeds differ only in `--seed`; "
        "`--validation --monitor` lines are the learning-curve runs; paths inside this report's "
        "folder are written relative to it). Every parameter of every model is in "
        "results.json.");
    if (!cmds.empty()) cmds.pop_back();
    d.code(cmds);
  }
  (void)for_html;
  return d;
}

}  // namespace

std::string compare_markdown(const json& results,
                             const std::vector<std::pair<std::string, std::string>>& plots) {
  return render_md(build_doc(results, plots, false));
}

std::string compare_html(const json& results,
                         const std::vector<std::pair<std::string, std::string>>& plots) {
  return render_html(build_doc(results, plots, true));
}

namespace {

/// `text` with every path inside the report folder `report` (absolute, normalised) written
/// relative to it ("/tmp/r/work/split" or "r/work/split" -> "work/split"), so that the
/// report reads the same wherever it is opened; other paths stay as the user gave them.
std::string relative_to_report(const std::string& text, const fs::path& report) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t end = std::min(text.find_first_of(" \n`", i), text.size());
    std::string token = text.substr(i, end - i);
    if (token.find('/') != std::string::npos) {
      std::error_code ec;
      const fs::path abs = fs::absolute(fs::path(token), ec).lexically_normal();
      const fs::path rel = abs.lexically_relative(report);
      if (!ec && !rel.empty() && *rel.begin() != ".." && rel != ".")
        token = rel.generic_string() + (token.back() == '/' ? "/" : "");
    }
    out += token;
    if (end < text.size()) out += text[end];
    i = end + 1;
  }
  return out;
}

/// The results with the paths the report shows (split folder, data note, training commands)
/// made relative to the report folder `dir` where they lie inside it.
json with_report_paths(json r, const std::string& dir) {
  std::error_code ec;
  const fs::path report = fs::absolute(fs::path(dir), ec).lexically_normal();
  if (ec) return r;
  auto fix = [&](json& obj, const char* key) {
    if (obj.is_object() && obj.contains(key) && obj[key].is_string())
      obj[key] = relative_to_report(obj[key].get<std::string>(), report);
  };
  if (r.contains("data")) {
    fix(r["data"], "split_dir");
    fix(r["data"], "note");
  }
  if (r.contains("models") && r["models"].is_array())
    for (auto& m : r["models"]) {
      if (m.contains("runs") && m["runs"].is_array())
        for (auto& run : m["runs"]) fix(run, "command");
      if (m.contains("curve")) fix(m["curve"], "command");
    }
  return r;
}

}  // namespace

void write_compare_report(const json& results, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError("cannot create folder '" + dir + "': " + ec.message());
  auto write = [&](const std::string& name, const std::string& text) {
    io::write_file((fs::path(dir) / name).string(), text);
  };
  const auto plots = compare_plots(results);
  // Plots of an earlier report that this one does not have (e.g. learning curves) go.
  for (const char* old : {"metric_vs_k.svg", "learning_curves.svg", "by_length.svg",
                          "by_popularity.svg", "time_vs_accuracy.svg"}) {
    bool kept = false;
    for (const auto& p : plots) kept = kept || p.first == old;
    if (!kept) fs::remove(fs::path(dir) / old, ec);
  }
  for (const auto& [name, doc] : plots) write(name, doc);
  write("results.json", results.dump(2) + "\n");
  const json shown = with_report_paths(results, dir);
  write("report.md", compare_markdown(shown, plots));
  write("report.html", compare_html(shown, plots));
}

}  // namespace seqrec
