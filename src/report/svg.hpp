// Small self-contained SVG charts for the compare report: line charts (side-by-side
// panels with one legend), grouped bar charts and labelled scatter plots. The output is a
// standalone SVG document (well-formed XML, no external references) that can also be
// inlined in HTML. Colours come from a colour-blind-safe palette, assigned by the caller.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace seqrec::svg {

/// Escapes &, <, >, " and ' for XML text and attribute values.
std::string escape(std::string_view s);

/// Colour i of the palette (Okabe–Ito, then darker variants; cycles after 14).
std::string palette(size_t i);

/// One named series of points. Line charts read x and y; bar charts y (one value per
/// group); scatter plots x, y and optional errors. NaN values are skipped.
struct Series {
  std::string name;
  std::string color;
  std::vector<double> x, y;
  std::vector<double> x_err, y_err;  ///< optional, empty or one per point (± half-widths)
};

struct Axis {
  std::string label;
  bool log = false;          ///< log10 scale (values <= 0 are skipped)
  bool include_zero = true;  ///< linear axes start at 0 when all values are positive
};

/// A line chart panel: one polyline with markers per series.
struct LineChart {
  std::string title;
  Axis x, y;
  std::vector<Series> series;
};

/// Grouped bars: one group per category, one bar per series inside it.
struct BarChart {
  std::string title;
  Axis y;
  std::vector<std::string> groups;       ///< category labels along the x axis
  std::vector<std::string> group_notes;  ///< optional second label line per group
  std::vector<Series> series;            ///< y[g] = value of group g
};

/// Points labelled with their series' name, with optional error bars.
struct ScatterChart {
  std::string title;
  Axis x, y;
  std::vector<Series> series;
};

/// Panels side by side (at most `per_row` per row, each `panel_width` pixels wide) under
/// one legend of the series names of all panels. `caption` (optional) is a line of small
/// text under the figure.
std::string line_charts(const std::vector<LineChart>& panels, const std::string& caption = "",
                        int per_row = 3, double panel_width = 330);
std::string bar_chart(const BarChart& chart, const std::string& caption = "");
std::string scatter_chart(const ScatterChart& chart, const std::string& caption = "");

}  // namespace seqrec::svg
