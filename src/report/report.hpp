// The compare report: every number computed once into a JSON document (results.json), and
// the Markdown, HTML and SVG views rendered from that document only, so that the report
// shows nothing that results.json lacks. Nothing here knows particular model types: models
// are labels with generic per-run results.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "app/compare.hpp"
#include "seqrec/dataset.hpp"

namespace seqrec {

/// Aggregates the runs into the results document: mean ± std over seeds of every metric,
/// the best model per metric and paired significance tests against it (per-prediction
/// values averaged over seeds), metric vs K, accuracy by history length and by target
/// popularity, costs, learning curves, and the protocol in words. `test` is the test set
/// the runs were evaluated on (for history lengths), `train_counts` the training events per
/// item (for popularity). Throws Error when the runs do not share their predictions.
nlohmann::json analyse_comparison(const CompareSetup& setup,
                                  const std::vector<CompareModelResult>& models,
                                  const SequenceSet& test, std::span<const int64_t> train_counts);

/// The plots of a results document: (file name, SVG document); a plot without data (e.g.
/// learning curves when no model is iterative) is left out.
std::vector<std::pair<std::string, std::string>> compare_plots(const nlohmann::json& results);

/// report.md (plots referenced as files next to it).
std::string compare_markdown(const nlohmann::json& results,
                             const std::vector<std::pair<std::string, std::string>>& plots);

/// report.html: one self-contained page (inline CSS and SVG, no scripts, no network).
std::string compare_html(const nlohmann::json& results,
                         const std::vector<std::pair<std::string, std::string>>& plots);

/// Writes results.json, report.md, report.html and every plot as an .svg file into `dir`.
void write_compare_report(const nlohmann::json& results, const std::string& dir);

}  // namespace seqrec
