// The SVG charts of the compare report: well-formed XML whatever the input (odd names,
// NaN, empty series, zeros on log axes), and the checker itself.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "report/svg.hpp"
#include "xml_check.hpp"

using namespace seqrec;
using seqrec_test::xml_problem;

namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

void expect_clean(const std::string& doc) {
  EXPECT_EQ(xml_problem(doc), "") << doc.substr(0, 400);
  EXPECT_EQ(doc.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  // No number printed as nan/inf, no external references.
  EXPECT_EQ(doc.find("nan"), std::string::npos);
  EXPECT_EQ(doc.find("inf"), std::string::npos);
  EXPECT_EQ(doc.find("href"), std::string::npos);
}

}  // namespace

TEST(XmlCheck, AcceptsWellFormedAndRejectsBroken) {
  EXPECT_EQ(xml_problem("<a x=\"1\"><b/>t &amp; &#38; &#x26;<c y='2'></c></a>"), "");
  EXPECT_EQ(xml_problem("<?xml version=\"1.0\"?>\n<!-- c --><a/>\n"), "");
  EXPECT_NE(xml_problem("<a><b></a></b>"), "");
  EXPECT_NE(xml_problem("<a>"), "");
  EXPECT_NE(xml_problem("<a x=1/>"), "");
  EXPECT_NE(xml_problem("<a x=\"1\" x=\"2\"/>"), "");
  EXPECT_NE(xml_problem("<a>fish & chips</a>"), "");
  EXPECT_NE(xml_problem("<a>&nbsp;</a>"), "");
  EXPECT_NE(xml_problem("<a/><b/>"), "");
  EXPECT_NE(xml_problem("<a t=\"<\"/>"), "");
  EXPECT_NE(xml_problem("text<a/>"), "");
  EXPECT_NE(xml_problem(""), "");
}

TEST(Svg, EscapesMarkup) {
  EXPECT_EQ(svg::escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
  EXPECT_EQ(svg::escape(std::string("x\x01y")), "x y");
}

TEST(Svg, LineChartsAreWellFormed) {
  svg::LineChart a;
  a.title = "Recall@K <all> & \"more\"";
  a.x.label = "K";
  a.y.label = "Recall@K";
  svg::Series s1;
  s1.name = "gru4rec <v2> & co";
  s1.color = svg::palette(0);
  s1.x = {1, 5, 10, 20};
  s1.y = {0.1, 0.3, std::nan(""), 0.6};
  svg::Series s2;
  s2.name = "empty";
  s2.color = svg::palette(1);
  a.series = {s1, s2};
  svg::LineChart b;  // log axes with zeros and negatives: those points are skipped
  b.title = "log";
  b.x.log = b.y.log = true;
  svg::Series s3;
  s3.name = "p";
  s3.color = svg::palette(2);
  s3.x = {0, 1, 10, 100};
  s3.y = {-1, 0.01, 0.1, 1};
  b.series = {s3};
  const std::string doc = svg::line_charts({a, b, svg::LineChart{}}, "caption & note");
  expect_clean(doc);
  EXPECT_NE(doc.find("gru4rec &lt;v2&gt; &amp; co"), std::string::npos);
  // One legend entry per distinct name; 3 finite points of s1 and 3 positive of s3 drawn
  // as circles (plus the 3 legend markers), each with a tooltip.
  EXPECT_EQ(count(doc, "<circle"), 3u + 3u + 3u);
  EXPECT_EQ(count(doc, "<polyline"), 2u);
}

TEST(Svg, BarAndScatterChartsAreWellFormed) {
  svg::BarChart bars;
  bars.title = "by length";
  bars.y.label = "Recall@20";
  bars.groups = {"1", "2", "3–4", "5+"};
  bars.group_notes = {"n=10", "n=5", "n=3", "n=1"};
  for (int m = 0; m < 3; ++m) {
    svg::Series s;
    s.name = "m" + std::to_string(m);
    s.color = svg::palette(static_cast<size_t>(m));
    s.y = {0.1 * m, 0.2, std::nan(""), 0.0};
    s.y_err = {0.01, std::nan(""), 0.0, 0.02};
    bars.series.push_back(s);
  }
  const std::string b = svg::bar_chart(bars);
  expect_clean(b);
  EXPECT_EQ(count(b, "<title>m1, 2: 0.2</title>"), 1u);

  svg::BarChart none;  // no groups at all
  expect_clean(svg::bar_chart(none));

  svg::ScatterChart sc;
  sc.title = "time vs accuracy";
  sc.x.log = true;
  for (int m = 0; m < 4; ++m) {  // identical points: labels must not overlap
    svg::Series s;
    s.name = "model" + std::to_string(m);
    s.color = svg::palette(static_cast<size_t>(m));
    s.x = {1.0};
    s.y = {0.5};
    s.y_err = {0.01};
    sc.series.push_back(s);
  }
  const std::string c = svg::scatter_chart(sc, "note");
  expect_clean(c);
  EXPECT_EQ(count(c, "\">model"), 4u + 4u);  // legend + point labels
}
