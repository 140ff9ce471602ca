// SVG charts: scales with "nice" ticks, axes, legends, and the three chart kinds.
#include "report/svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

namespace seqrec::svg {

namespace {

constexpr double kFont = 12.0;
constexpr double kSmall = 10.5;

/// Coordinates with at most two decimals and no trailing zeros (keeps the files small).
std::string num(double v) {
  if (!std::isfinite(v)) v = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s(buf);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

/// Rough width of a text in pixels (proportional sans-serif, ~0.58 em per character).
double text_width(const std::string& s, double size = kFont) {
  size_t chars = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++chars;  // count UTF-8 code points, not bytes
  return 0.58 * size * static_cast<double>(chars);
}

class Canvas {
 public:
  void raw(const std::string& s) { body_ += s; }
  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double width = 1,
            const std::string& extra = "") {
    body_ += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" +
             num(y2) + "\" stroke=\"" + stroke + "\" stroke-width=\"" + num(width) + "\"" + extra +
             "/>\n";
  }
  void rect(double x, double y, double w, double h, const std::string& fill,
            const std::string& tooltip = "", const std::string& extra = "") {
    body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(std::max(0.0, w)) +
             "\" height=\"" + num(std::max(0.0, h)) + "\" fill=\"" + fill + "\"" + extra;
    close_with_tooltip("rect", tooltip);
  }
  void circle(double x, double y, double r, const std::string& fill,
              const std::string& tooltip = "") {
    body_ += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"" + num(r) + "\" fill=\"" +
             fill + "\" stroke=\"#fff\" stroke-width=\"1\"";
    close_with_tooltip("circle", tooltip);
  }
  void text(double x, double y, const std::string& s, const std::string& anchor = "start",
            double size = kFont, const std::string& extra = "") {
    body_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"";
    if (anchor != "start") body_ += " text-anchor=\"" + anchor + "\"";
    if (size != kFont) body_ += " font-size=\"" + num(size) + "\"";
    body_ += extra + ">" + escape(s) + "</text>\n";
  }
  void polyline(const std::vector<std::pair<double, double>>& pts, const std::string& stroke) {
    if (pts.size() < 2) return;
    body_ += "<polyline fill=\"none\" stroke=\"" + stroke +
             "\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"";
    for (size_t i = 0; i < pts.size(); ++i)
      body_ += (i ? " " : "") + num(pts[i].first) + "," + num(pts[i].second);
    body_ += "\"/>\n";
  }
  std::string document(double w, double h, const std::string& title) const {
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(w) + "\" height=\"" + num(h) +
           "\" viewBox=\"0 0 " + num(w) + " " + num(h) +
           "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"" + num(kFont) +
           "\" role=\"img\">\n<title>" + escape(title) + "</title>\n<rect width=\"" + num(w) +
           "\" height=\"" + num(h) + "\" fill=\"#ffffff\"/>\n" + body_ + "</svg>\n";
  }

 private:
  void close_with_tooltip(const char* tag, const std::string& tooltip) {
    if (tooltip.empty()) {
      body_ += "/>\n";
    } else {
      body_ += "><title>" + escape(tooltip) + "</title></" + tag + ">\n";
    }
  }
  std::string body_;
};

/// Maps data values to pixels along one axis, with its tick positions.
struct Scale {
  double lo = 0, hi = 1;
  bool log = false;
  double p0 = 0, p1 = 1;  // pixels of lo and hi
  std::vector<double> ticks;
  int decimals = 0;

  double map(double v) const {
    double t;
    if (log)
      t = (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    else
      t = (v - lo) / (hi - lo);
    return p0 + t * (p1 - p0);
  }
  bool valid(double v) const { return std::isfinite(v) && (!log || v > 0); }
  std::string label(double v) const {
    char buf[48];
    if (log) {
      if (v >= 1e4 || v < 1e-3)
        std::snprintf(buf, sizeof buf, "%.0e", v);
      else
        std::snprintf(buf, sizeof buf, "%g", v);
    } else {
      std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    }
    return buf;
  }
};

/// A scale over [vmin, vmax] with about `target` ticks at 1, 2, 2.5 or 5 times a power of
/// ten (linear) or at powers of ten (log; with 2x and 5x over short ranges).
Scale make_scale(double vmin, double vmax, const Axis& axis, int target = 5) {
  Scale s;
  s.log = axis.log;
  if (!std::isfinite(vmin) || !std::isfinite(vmax)) {
    vmin = axis.log ? 1 : 0;
    vmax = axis.log ? 10 : 1;
  }
  if (s.log) {
    // A little room beyond the data (a fifth of a decade), ticks at the powers of ten
    // inside, with 2x and 5x when there are fewer than three of them.
    if (!(vmin > 0)) vmin = vmax > 0 ? vmax / 10 : 1;
    if (!(vmax > vmin)) vmax = vmin * 10;
    s.lo = std::pow(10.0, std::log10(vmin) - 0.2);
    s.hi = std::pow(10.0, std::log10(vmax) + 0.2);
    const double a = std::floor(std::log10(s.lo)), b = std::ceil(std::log10(s.hi));
    std::vector<double> decades, all;
    for (double e = a; e <= b + 1e-9; e += 1) {
      const double base = std::pow(10.0, e);
      for (double m : {1.0, 2.0, 5.0}) {
        const double t = m * base;
        if (t < s.lo * (1 - 1e-9) || t > s.hi * (1 + 1e-9)) continue;
        all.push_back(t);
        if (m == 1.0) decades.push_back(t);
      }
    }
    s.ticks = decades.size() >= 3 ? decades : all;
    return s;
  }
  if (axis.include_zero && vmin > 0) vmin = 0;
  if (axis.include_zero && vmax < 0) vmax = 0;
  if (vmax - vmin <= 0) {
    const double pad = vmax == 0 ? 1.0 : std::fabs(vmax) * 0.1;
    vmin -= axis.include_zero && vmin == 0 ? 0 : pad;
    vmax += pad;
  }
  const double raw = (vmax - vmin) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  s.lo = std::floor(vmin / step + 1e-9) * step;
  s.hi = std::ceil(vmax / step - 1e-9) * step;
  if (s.hi <= s.lo) s.hi = s.lo + step;
  for (double v = s.lo; v <= s.hi + step * 1e-6; v += step)
    s.ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  // Enough decimals to tell the ticks apart (2.5 steps need one more).
  s.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  if (std::fabs(step / std::pow(10.0, std::floor(std::log10(step) + 1e-9)) - 2.5) < 1e-6)
    s.decimals += 1;
  return s;
}

struct Rect {
  double x, y, w, h;
};

/// Grid, axes, tick labels, axis labels and the title of one plot area.
void draw_frame(Canvas& c, const Rect& r, const Scale& xs, const Scale* ys_ptr,
                const std::string& title, const std::string& xlabel, const std::string& ylabel) {
  const Scale& ys = *ys_ptr;
  for (double t : ys.ticks) {
    const double y = ys.map(t);
    c.line(r.x, y, r.x + r.w, y, "#e6e6e6");
    c.text(r.x - 6, y + 4, ys.label(t), "end", kSmall, " fill=\"#444\"");
  }
  for (double t : xs.ticks) {
    const double x = xs.map(t);
    c.line(x, r.y, x, r.y + r.h, "#f0f0f0");
    c.text(x, r.y + r.h + 15, xs.label(t), "middle", kSmall, " fill=\"#444\"");
  }
  c.line(r.x, r.y + r.h, r.x + r.w, r.y + r.h, "#333");
  c.line(r.x, r.y, r.x, r.y + r.h, "#333");
  if (!title.empty()) c.text(r.x + r.w / 2, r.y - 10, title, "middle", 13, " font-weight=\"bold\"");
  if (!xlabel.empty()) c.text(r.x + r.w / 2, r.y + r.h + 33, xlabel, "middle");
  if (!ylabel.empty()) {
    const double x = r.x - 44, y = r.y + r.h / 2;
    c.text(x, y, ylabel, "middle", kFont,
           " transform=\"rotate(-90 " + num(x) + " " + num(y) + ")\"");
  }
}

/// One legend entry per distinct series name, in order, wrapped to `width`. Returns the
/// height used.
double draw_legend(Canvas& c, const std::vector<std::pair<std::string, std::string>>& entries,
                   double x0, double y0, double width, bool lines) {
  double x = x0, y = y0 + 14;
  double used = 0;
  for (const auto& [name, color] : entries) {
    const double w = 26 + text_width(name) + 18;
    if (x > x0 && x + w > x0 + width) {
      x = x0;
      y += 20;
    }
    if (lines) {
      c.line(x, y - 4, x + 20, y - 4, color, 2.5);
      c.circle(x + 10, y - 4, 3.5, color);
    } else {
      c.rect(x + 4, y - 11, 12, 12, color);
    }
    c.text(x + 26, y, name);
    x += w;
    used = y - y0 + 8;
  }
  return entries.empty() ? 0 : used;
}

std::vector<std::pair<std::string, std::string>> legend_entries(
    const std::vector<const std::vector<Series>*>& all) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto* list : all)
    for (const Series& s : *list) {
      bool seen = false;
      for (const auto& e : out) seen = seen || e.first == s.name;
      if (!seen) out.emplace_back(s.name, s.color);
    }
  return out;
}

/// Data range of the finite (and, on log axes, positive) values with their error bars.
void extend(double& lo, double& hi, const std::vector<double>& v, const std::vector<double>& err,
            bool log) {
  for (size_t i = 0; i < v.size(); ++i) {
    const double e = i < err.size() && std::isfinite(err[i]) ? err[i] : 0.0;
    for (double x : {v[i] - e, v[i] + e}) {
      if (!std::isfinite(x) || (log && x <= 0)) continue;
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
  }
}

std::string fmt_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters other than tab/newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r')
          out += ' ';
        else
          out += ch;
    }
  }
  return out;
}

std::string palette(size_t i) {
  static const char* colors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                 "#56B4E9", "#000000", "#F0E442", "#004C78", "#8F3F00",
                                 "#006B4E", "#8A4F71", "#9A6B00", "#7F7F7F"};
  return colors[i % (sizeof colors / sizeof colors[0])];
}

std::string line_charts(const std::vector<LineChart>& panels, const std::string& caption,
                        int per_row, double panel_width) {
  per_row =
      std::max(1, std::min<int>(per_row, static_cast<int>(std::max<size_t>(1, panels.size()))));
  const double pw = std::max(200.0, panel_width), ph = 250, ml = 62, mr = 14, mt = 30, mb = 46;
  const int rows = static_cast<int>((panels.size() + per_row - 1) / per_row);
  const double width = per_row * pw + 10;
  Canvas c;
  std::vector<const std::vector<Series>*> all;
  for (const auto& p : panels) all.push_back(&p.series);
  const double legend_h = draw_legend(c, legend_entries(all), 12, 4, width - 24, true);
  const double top = legend_h + 10;
  std::string title;
  for (size_t i = 0; i < panels.size(); ++i) {
    const LineChart& p = panels[i];
    title += (i ? "; " : "") + p.title;
    const double ox = 5 + static_cast<double>(i % per_row) * pw;
    const double oy = top + static_cast<double>(i / per_row) * ph;
    const Rect r{ox + ml, oy + mt, pw - ml - mr, ph - mt - mb};
    double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
    for (const Series& s : p.series) {
      extend(xlo, xhi, s.x, {}, p.x.log);
      extend(ylo, yhi, s.y, s.y_err, p.y.log);
    }
    Axis xa = p.x;
    xa.include_zero = false;
    Scale xs = make_scale(xlo, xhi, xa, 6), ys = make_scale(ylo, yhi, p.y);
    if (!p.x.log && std::isfinite(xlo)) {  // data-tight x range: ticks inside it only
      xs.lo = xlo;
      xs.hi = xhi > xlo ? xhi : xlo + 1;
      std::vector<double> inside;
      for (double t : xs.ticks)
        if (t >= xs.lo - 1e-9 && t <= xs.hi + 1e-9) inside.push_back(t);
      xs.ticks = inside;
    }
    xs.p0 = r.x;
    xs.p1 = r.x + r.w;
    ys.p0 = r.y + r.h;
    ys.p1 = r.y;
    draw_frame(c, r, xs, &ys, p.title, p.x.label, p.y.label);
    for (const Series& s : p.series) {
      std::vector<std::pair<double, double>> pts;
      for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k)
        if (xs.valid(s.x[k]) && ys.valid(s.y[k])) pts.emplace_back(xs.map(s.x[k]), ys.map(s.y[k]));
      c.polyline(pts, s.color);
      for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k) {
        if (!xs.valid(s.x[k]) || !ys.valid(s.y[k])) continue;
        const double x = xs.map(s.x[k]), y = ys.map(s.y[k]);
        if (k < s.y_err.size() && std::isfinite(s.y_err[k]) && s.y_err[k] > 0) {
          c.line(x, ys.map(s.y[k] - s.y_err[k]), x, ys.map(s.y[k] + s.y_err[k]), s.color, 1);
        }
        c.circle(x, y, 3.2, s.color,
                 s.name + ": " + p.x.label + " " + fmt_value(s.x[k]) + ", " + p.y.label + " " +
                     fmt_value(s.y[k]));
      }
    }
  }
  double height = top + rows * ph + 6;
  if (!caption.empty()) {
    c.text(12, height + 6, caption, "start", kSmall, " fill=\"#555\"");
    height += 18;
  }
  return c.document(width, height, title);
}

std::string bar_chart(const BarChart& chart, const std::string& caption) {
  const size_t ng = chart.groups.size(), ns = std::max<size_t>(1, chart.series.size());
  const double bar = ns > 5 ? 14 : 20, gap = 22;
  double group_w = std::max(static_cast<double>(ns) * bar + gap, 70.0);
  for (size_t g = 0; g < ng; ++g) {  // room for the labels under each group
    group_w = std::max(group_w, text_width(chart.groups[g]) + 16);
    if (g < chart.group_notes.size())
      group_w = std::max(group_w, text_width(chart.group_notes[g], kSmall) + 16);
  }
  const double ml = 66, mr = 16, mt = 30, mb = chart.group_notes.empty() ? 40 : 54;
  const double plot_w = std::max(260.0, static_cast<double>(ng) * group_w);
  const double width = ml + plot_w + mr;
  Canvas c;
  const double legend_h = draw_legend(c, legend_entries({&chart.series}), 12, 4, width - 24, false);
  const double ph = 240;
  const Rect r{ml, legend_h + 10 + mt, plot_w, ph};
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const Series& s : chart.series) extend(lo, hi, s.y, s.y_err, false);
  Axis ya = chart.y;
  ya.include_zero = true;
  Scale ys = make_scale(lo, hi, ya);
  ys.p0 = r.y + r.h;
  ys.p1 = r.y;
  // The x "scale" only carries no ticks; groups are drawn by hand.
  Scale xs;
  xs.p0 = r.x;
  xs.p1 = r.x + r.w;
  draw_frame(c, r, xs, &ys, chart.title, "", chart.y.label);
  const double slot = r.w / static_cast<double>(std::max<size_t>(1, ng));
  for (size_t g = 0; g < ng; ++g) {
    const double gx = r.x + slot * static_cast<double>(g);
    const double x0 = gx + (slot - static_cast<double>(chart.series.size()) * bar) / 2;
    for (size_t si = 0; si < chart.series.size(); ++si) {
      const Series& s = chart.series[si];
      if (g >= s.y.size() || !std::isfinite(s.y[g])) continue;
      const double v = s.y[g];
      const double y0 = ys.map(0), y1 = ys.map(v);
      const double bx = x0 + static_cast<double>(si) * bar;
      c.rect(bx + 1, std::min(y0, y1), bar - 2, std::fabs(y0 - y1), s.color,
             s.name + ", " + chart.groups[g] + ": " + fmt_value(v));
      if (g < s.y_err.size() && std::isfinite(s.y_err[g]) && s.y_err[g] > 0)
        c.line(bx + bar / 2, ys.map(v - s.y_err[g]), bx + bar / 2, ys.map(v + s.y_err[g]), "#222");
    }
    c.text(gx + slot / 2, r.y + r.h + 16, chart.groups[g], "middle");
    if (g < chart.group_notes.size())
      c.text(gx + slot / 2, r.y + r.h + 31, chart.group_notes[g], "middle", kSmall,
             " fill=\"#555\"");
  }
  double height = r.y + r.h + mb;
  if (!caption.empty()) {
    c.text(12, height, caption, "start", kSmall, " fill=\"#555\"");
    height += 12;
  }
  return c.document(width, height, chart.title);
}

std::string scatter_chart(const ScatterChart& chart, const std::string& caption) {
  const double width = 560, ph = 330, ml = 66, mr = 30, mt = 30, mb = 46;
  Canvas c;
  const double legend_h = draw_legend(c, legend_entries({&chart.series}), 12, 4, width - 24, true);
  const Rect r{ml, legend_h + 10 + mt, width - ml - mr, ph - mt - mb};
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const Series& s : chart.series) {
    extend(xlo, xhi, s.x, s.x_err, chart.x.log);
    extend(ylo, yhi, s.y, s.y_err, chart.y.log);
  }
  Scale xs = make_scale(xlo, xhi, chart.x), ys = make_scale(ylo, yhi, chart.y);
  xs.p0 = r.x;
  xs.p1 = r.x + r.w;
  ys.p0 = r.y + r.h;
  ys.p1 = r.y;
  draw_frame(c, r, xs, &ys, chart.title, chart.x.label, chart.y.label);
  std::vector<Rect> placed;  // the points, then each label placed: labels keep off them
  for (const Series& s : chart.series)
    for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k)
      if (xs.valid(s.x[k]) && ys.valid(s.y[k]))
        placed.push_back({xs.map(s.x[k]) - 5, ys.map(s.y[k]) - 5, 10, 10});
  for (const Series& s : chart.series) {
    for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k) {
      if (!xs.valid(s.x[k]) || !ys.valid(s.y[k])) continue;
      const double x = xs.map(s.x[k]), y = ys.map(s.y[k]);
      if (k < s.y_err.size() && std::isfinite(s.y_err[k]) && s.y_err[k] > 0)
        c.line(x, ys.map(s.y[k] - s.y_err[k]), x, ys.map(s.y[k] + s.y_err[k]), s.color, 1.5);
      if (k < s.x_err.size() && std::isfinite(s.x_err[k]) && s.x_err[k] > 0) {
        const double a = s.x[k] - s.x_err[k], b = s.x[k] + s.x_err[k];
        if (xs.valid(a) && xs.valid(b)) c.line(xs.map(a), y, xs.map(b), y, s.color, 1.5);
      }
      c.circle(x, y, 5, s.color,
               s.name + ": " + chart.x.label + " " + fmt_value(s.x[k]) + ", " + chart.y.label +
                   " " + fmt_value(s.y[k]));
      // The label goes right of the point, else left, above or below, whichever first
      // stays inside the plot and clear of the labels and points placed so far; failing
      // that, right of the point and moved down until clear.
      const double tw = text_width(s.name);
      auto clear = [&](const Rect& b) {
        if (b.x < r.x || b.x + b.w > r.x + r.w + 20 || b.y < r.y - 12 || b.y + b.h > r.y + r.h)
          return false;
        for (const Rect& o : placed)
          if (b.x < o.x + o.w && o.x < b.x + b.w && b.y < o.y + o.h && o.y < b.y + b.h)
            return false;
        return true;
      };
      const Rect candidates[] = {{x + 8, y - 10, tw, 14},
                                 {x - 8 - tw, y - 10, tw, 14},
                                 {x - tw / 2, y - 22, tw, 14},
                                 {x - tw / 2, y + 8, tw, 14}};
      Rect box = candidates[0];
      bool found = false;
      for (const Rect& cand : candidates)
        if (!found && clear(cand)) {
          box = cand;
          found = true;
        }
      for (int tries = 0; !found && tries < 12; ++tries) {
        box.y += 14;
        found = clear(box);
      }
      placed.push_back(box);
      c.text(box.x, box.y + 11, s.name, "start", kFont, " fill=\"" + s.color + "\"");
    }
  }
  double height = r.y + r.h + mb;
  if (!caption.empty()) {
    c.text(12, height, caption, "start", kSmall, " fill=\"#555\"");
    height += 12;
  }
  return c.document(width, height, chart.title);
}

}  // namespace seqrec::svg
