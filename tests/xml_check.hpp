// A small XML well-formedness checker for the tests (SVG output): one root element,
// properly nested and closed tags, quoted and unique attributes, valid entity and
// character references, no stray '<' or '&'. Not a validating parser.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace seqrec_test {

namespace xml_detail {

inline bool name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         static_cast<unsigned char>(c) >= 0x80;
}
inline bool name_char(char c) {
  return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}
inline bool space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/// Checks the references in character data or an attribute value; "" when fine.
inline std::string check_text(const std::string& t, size_t at, bool attribute) {
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '<')
      return "'<' in " + std::string(attribute ? "an attribute" : "text") + " at byte " +
             std::to_string(at + i);
    if (t[i] != '&') continue;
    const size_t semi = t.find(';', i);
    if (semi == std::string::npos) return "unterminated '&' at byte " + std::to_string(at + i);
    const std::string ref = t.substr(i + 1, semi - i - 1);
    bool ok = ref == "amp" || ref == "lt" || ref == "gt" || ref == "quot" || ref == "apos";
    if (!ok && ref.size() > 1 && ref[0] == '#') {
      const bool hex = ref[1] == 'x';
      const std::string digits = ref.substr(hex ? 2 : 1);
      ok = !digits.empty() && digits.find_first_not_of(hex ? "0123456789abcdefABCDEF"
                                                           : "0123456789") == std::string::npos;
    }
    if (!ok) return "bad reference '&" + ref + ";' at byte " + std::to_string(at + i);
    i = semi;
  }
  return "";
}

}  // namespace xml_detail

/// "" when `s` is well-formed XML, otherwise what is wrong and where.
inline std::string xml_problem(const std::string& s) {
  using namespace xml_detail;
  std::vector<std::string> open;
  bool root_done = false, root_seen = false;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    if (s[i] != '<') {
      const size_t next = s.find('<', i);
      const std::string text = s.substr(i, next == std::string::npos ? n - i : next - i);
      if (open.empty()) {
        for (char c : text)
          if (!space(c)) return "text outside the root element at byte " + std::to_string(i);
      } else if (auto p = check_text(text, i, false); !p.empty()) {
        return p;
      }
      i = next == std::string::npos ? n : next;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      const size_t end = s.find("-->", i + 4);
      if (end == std::string::npos) return "unterminated comment at byte " + std::to_string(i);
      i = end + 3;
      continue;
    }
    if (s.compare(i, 9, "<![CDATA[") == 0) {
      if (open.empty()) return "CDATA outside the root at byte " + std::to_string(i);
      const size_t end = s.find("]]>", i);
      if (end == std::string::npos) return "unterminated CDATA at byte " + std::to_string(i);
      i = end + 3;
      continue;
    }
    if (s.compare(i, 2, "<?") == 0) {
      if (i != 0 && s.compare(i, 5, "<?xml") == 0)
        return "XML declaration not at the start (byte " + std::to_string(i) + ")";
      const size_t end = s.find("?>", i);
      if (end == std::string::npos) return "unterminated <? at byte " + std::to_string(i);
      i = end + 2;
      continue;
    }
    if (s.compare(i, 2, "</") == 0) {
      size_t j = i + 2;
      const size_t start = j;
      while (j < n && name_char(s[j])) ++j;
      const std::string name = s.substr(start, j - start);
      while (j < n && space(s[j])) ++j;
      if (j >= n || s[j] != '>') return "bad end tag at byte " + std::to_string(i);
      if (open.empty() || open.back() != name)
        return "end tag </" + name + "> at byte " + std::to_string(i) + " does not close <" +
               (open.empty() ? std::string("nothing") : open.back()) + ">";
      open.pop_back();
      if (open.empty()) root_done = true;
      i = j + 1;
      continue;
    }
    // A start tag.
    size_t j = i + 1;
    if (j >= n || !name_start(s[j])) return "bad tag name at byte " + std::to_string(i);
    const size_t start = j;
    while (j < n && name_char(s[j])) ++j;
    const std::string name = s.substr(start, j - start);
    if (root_done) return "second root element <" + name + "> at byte " + std::to_string(i);
    std::set<std::string> attrs;
    bool self_closing = false;
    while (true) {
      const size_t before = j;
      while (j < n && space(s[j])) ++j;
      if (j >= n) return "unterminated tag <" + name + "> at byte " + std::to_string(i);
      if (s[j] == '>') {
        ++j;
        break;
      }
      if (s[j] == '/' && j + 1 < n && s[j + 1] == '>') {
        self_closing = true;
        j += 2;
        break;
      }
      if (j == before) return "attributes need spaces between them at byte " + std::to_string(j);
      if (!name_start(s[j])) return "bad attribute name at byte " + std::to_string(j);
      const size_t a0 = j;
      while (j < n && name_char(s[j])) ++j;
      const std::string attr = s.substr(a0, j - a0);
      if (!attrs.insert(attr).second)
        return "attribute '" + attr + "' repeated at byte " + std::to_string(a0);
      while (j < n && space(s[j])) ++j;
      if (j >= n || s[j] != '=') return "attribute '" + attr + "' without a value";
      ++j;
      while (j < n && space(s[j])) ++j;
      if (j >= n || (s[j] != '"' && s[j] != '\''))
        return "unquoted value of '" + attr + "' at byte " + std::to_string(j);
      const char q = s[j];
      const size_t end = s.find(q, j + 1);
      if (end == std::string::npos) return "unterminated value of '" + attr + "'";
      if (auto p = check_text(s.substr(j + 1, end - j - 1), j + 1, true); !p.empty()) return p;
      j = end + 1;
    }
    root_seen = true;
    if (self_closing) {
      if (open.empty()) root_done = true;
    } else {
      open.push_back(name);
    }
    i = j;
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  if (!root_seen) return "no root element";
  return "";
}

}  // namespace seqrec_test
