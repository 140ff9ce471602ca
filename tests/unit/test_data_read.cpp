// read_events / write_events: every format, detection, malformed input, the cache.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "unit/test_data_util.hpp"

namespace seqrec {
namespace {

using test::input_error;
using test::tokens_of;
using Strings = std::vector<std::string>;

class DataRead : public test::DataTmp {};

TEST_F(DataRead, Gru4recTsvGroupsAndSortsByTime) {
  // Session 2 appears before session 1 and is split; times within session 1 are unsorted,
  // with a tie (file order breaks it).
  const auto p = write("clicks.tsv",
                       "SessionId\tItemId\tTime\n"
                       "2\t10\t100.5\n"
                       "1\t11\t50\n"
                       "1\t12\t40\n"
                       "2\t13\t101\n"
                       "1\t14\t40\n");
  ReadInfo info;
  const EventLog log = read_events(p, {}, &info);
  EXPECT_EQ(info.format, Format::Delimited);
  ASSERT_EQ(log.seqs.size(), 2u);
  EXPECT_EQ(log.seqs.ids, (Strings{"2", "1"}));
  EXPECT_EQ(tokens_of(log, 0), (Strings{"10", "13"}));
  EXPECT_EQ(tokens_of(log, 1), (Strings{"12", "14", "11"}));
  ASSERT_TRUE(log.seqs.has_times());
  EXPECT_DOUBLE_EQ(log.seqs.seq_times(0)[0], 100.5);
  EXPECT_DOUBLE_EQ(log.seqs.seq_times(1)[2], 50.0);
  // Items are indexed in order of first appearance in the file.
  EXPECT_EQ(log.items.tokens(), (Strings{"10", "11", "12", "13", "14"}));
  EXPECT_EQ(log.source, p);
}

TEST_F(DataRead, CsvHeadersCaseInsensitiveAndColumnOrder) {
  const auto p = write("x.csv",
                       "Rating,Timestamp,ITEM_ID,User_Id\n"
                       "5,3,a,u1\n"
                       "4,1,b,u1\n"
                       "3,2,c,u2\n");
  const EventLog log = read_events(p);
  ASSERT_EQ(log.seqs.size(), 2u);
  EXPECT_EQ(log.seqs.ids, (Strings{"u1", "u2"}));
  EXPECT_EQ(tokens_of(log, 0), (Strings{"b", "a"}));
}

TEST_F(DataRead, SessionColumnPreferredOverUser) {
  const auto p = write("d.csv",
                       "session_id;user_id;item_id;timeframe;eventdate\n"
                       "1;NA;81766;526309;2016-05-09\n"
                       "1;NA;31331;1031018;2016-05-09\n"
                       "2;7;5;0;2016-05-10\n");
  ReadInfo info;
  const EventLog log = read_events(p, {}, &info);
  ASSERT_EQ(log.seqs.size(), 2u);
  EXPECT_EQ(log.seqs.ids, (Strings{"1", "2"}));
  // 2016-05-09T00:00:00Z = 1462752000; + timeframe / 1000.
  EXPECT_DOUBLE_EQ(log.seqs.seq_times(0)[0], 1462752000.0 + 526.309);
  EXPECT_DOUBLE_EQ(log.seqs.seq_times(0)[1], 1462752000.0 + 1031.018);
  EXPECT_DOUBLE_EQ(log.seqs.seq_times(1)[0], 1462752000.0 + 86400.0);
  EXPECT_NE(info.layout.find("eventdate"), std::string::npos) << info.layout;
}

TEST_F(DataRead, NoHeaderNumericColumnsLikeMovieLens) {
  // u.data: user item rating time, tab separated, no header, unsorted.
  const auto p =
      write("u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n");
  ReadInfo info;
  const EventLog log = read_events(p, {}, &info);
  EXPECT_EQ(info.format, Format::Delimited);
  ASSERT_EQ(log.seqs.size(), 2u);
  EXPECT_EQ(log.seqs.ids, (Strings{"196", "186"}));
  EXPECT_EQ(tokens_of(log, 0), (Strings{"377", "242"}));  // sorted by time (column 3)
  EXPECT_DOUBLE_EQ(log.seqs.seq_times(0)[0], 878887116.0);
}

TEST_F(DataRead, NoHeaderThreeColumnsSpaceSeparated) {
  const auto p = write("s.txt", "1 5 10\n1 6 11\n2 5 12\n");
  ReadInfo info;
  const EventLog log = read_events(p, {}, &info);
  EXPECT_EQ(info.format, Format::Delimited);
  EXPECT_EQ(log.seqs.size(), 2u);
  EXPECT_DOUBLE_EQ(log.seqs.seq_times(1)[0], 12.0);
}

TEST_F(DataRead, InterFile) {
  const auto p = write("ml.inter",
                       "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                       "1\t1193\t5\t978300760\n"
                       "1\t661\t3\t978302109\n"
                       "2\t914\t3\t978301968\n");
  ReadInfo info;
  const EventLog log = read_events(p, {}, &info);
  EXPECT_EQ(info.format, Format::Inter);
  ASSERT_EQ(log.seqs.size(), 2u);
  EXPECT_EQ(tokens_of(log, 0), (Strings{"1193", "661"}));
  EXPECT_DOUBLE_EQ(log.seqs.seq_times(1)[0], 978301968.0);
  // session_id:token is accepted too, and wins over user_id.
  const auto q = write("s.inter", "session_id:token\titem_id:token\n5\ta\n5\tb\n");
  const EventLog l2 = read_events(q);
  EXPECT_EQ(l2.seqs.size(), 1u);
  EXPECT_FALSE(l2.seqs.has_times());
}

TEST_F(DataRead, SequencesWithIds) {
  const auto p = write("Beauty.txt", "1 1 2 3\n2 4 5\n3 2 6 7 8\n");
  ReadInfo info;
  const EventLog log = read_events(p, {}, &info);
  EXPECT_EQ(info.format, Format::Sequences);
  ASSERT_EQ(log.seqs.size(), 3u);
  EXPECT_EQ(log.seqs.ids, (Strings{"1", "2", "3"}));
  EXPECT_EQ(tokens_of(log, 2), (Strings{"2", "6", "7", "8"}));
  EXPECT_FALSE(log.seqs.has_times());
  EXPECT_EQ(log.items.size(), 8);
}

TEST_F(DataRead, SequencesWithoutIds) {
  const auto p =
      write("train_sessions.txt", "37151 37149 37149 37146\n2613 33285\n\n1756 120 120\n");
  const EventLog log = read_events(p);
  ASSERT_EQ(log.seqs.size(), 3u);
  EXPECT_EQ(log.seqs.ids, (Strings{"1", "2", "4"}));  // line numbers (line 3 is empty)
  EXPECT_EQ(tokens_of(log, 0), (Strings{"37151", "37149", "37149", "37146"}));
  // Forcing ids takes the first token as the id.
  ReadOptions o;
  o.sequence_ids = 1;
  const EventLog l2 = read_events(p, o);
  EXPECT_EQ(l2.seqs.ids, (Strings{"37151", "2613", "1756"}));
  EXPECT_EQ(tokens_of(l2, 0), (Strings{"37149", "37149", "37146"}));
}

TEST_F(DataRead, PairsKeepFileOrderPerUser) {
  const auto p = write("ml-1m.txt", "1 1\n1 2\n2 3\n1 4\n2 1\n");
  ReadInfo info;
  const EventLog log = read_events(p, {}, &info);
  EXPECT_EQ(info.format, Format::Pairs);
  ASSERT_EQ(log.seqs.size(), 2u);
  EXPECT_EQ(tokens_of(log, 0), (Strings{"1", "2", "4"}));
  EXPECT_EQ(tokens_of(log, 1), (Strings{"3", "1"}));
  EXPECT_FALSE(log.seqs.has_times());
}

TEST_F(DataRead, CrlfEmptyLinesAndBom) {
  const auto p = write(
      "crlf.tsv", "\xEF\xBB\xBFSessionId\tItemId\tTime\r\n1\t5\t1\r\n\r\n  \r\n1\t6\t2\r\n2\t5\t3");
  const EventLog log = read_events(p);
  ASSERT_EQ(log.seqs.size(), 2u);
  EXPECT_EQ(tokens_of(log, 0), (Strings{"5", "6"}));
  EXPECT_EQ(log.items.tokens(), (Strings{"5", "6"}));  // no '\r' left in tokens
}

TEST_F(DataRead, ColumnSelectionByNameIndexAndNone) {
  const auto p = write("c.tsv", "a\tb\tc\td\n1\tx\t5\t100\n1\ty\t6\t50\n");
  ReadOptions o;
  o.session_col = "a";
  o.item_col = "2";
  o.time_col = "D";
  const EventLog log = read_events(p, o);
  EXPECT_EQ(tokens_of(log, 0), (Strings{"6", "5"}));
  o.time_col = "none";
  const EventLog l2 = read_events(p, o);
  EXPECT_EQ(tokens_of(l2, 0), (Strings{"5", "6"}));
  EXPECT_FALSE(l2.seqs.has_times());
  // Unknown header names without explicit columns: a clear error.
  const std::string msg = input_error([&] { read_events(p); });
  EXPECT_NE(msg.find("c.tsv:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("session"), std::string::npos) << msg;
  o.session_col = "nope";
  EXPECT_NE(input_error([&] { read_events(p, o); }).find("'nope' not found"), std::string::npos);
  o.session_col = "9";
  EXPECT_NE(input_error([&] { read_events(p, o); }).find("does not exist"), std::string::npos);
}

TEST_F(DataRead, TimeScaleAndDates) {
  const auto p = write("ms.tsv", "SessionId\tItemId\tTime\n1\t5\t1500\n");
  ReadOptions o;
  o.time_scale = 1e-3;
  EXPECT_DOUBLE_EQ(read_events(p, o).seqs.times[0], 1.5);
  const auto q =
      write("d.tsv",
            "SessionId\tItemId\tTime\n1\t5\t2026-01-01T00:00:01Z\n1\t6\t2026-01-01 00:01:00.5\n");
  const EventLog log = read_events(q);
  EXPECT_DOUBLE_EQ(log.seqs.times[0], 1767225601.0);
  EXPECT_DOUBLE_EQ(log.seqs.times[1], 1767225660.5);
}

TEST_F(DataRead, DelimiterOption) {
  const auto p = write("pipe.txt", "session|item|time\n1|a|1\n1|b|2\n");
  EXPECT_EQ(read_events(p).seqs.n_events(), 2);  // '|' detected
  ReadOptions o;
  o.delimiter = "tab";
  o.format = Format::Delimited;
  EXPECT_FALSE(input_error([&] { read_events(p, o); }).empty());
}

// ---- malformed input: every message names the file and the line ----

TEST_F(DataRead, EmptyFile) {
  const auto p = write("empty.tsv", "");
  const std::string msg = input_error([&] { read_events(p); });
  EXPECT_NE(msg.find("empty.tsv:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
  const auto q = write("blank.tsv", "\n\r\n   \n");
  EXPECT_NE(input_error([&] { read_events(q); }).find("blank.tsv:1"), std::string::npos);
  const auto h = write("header_only.tsv", "SessionId\tItemId\tTime\n");
  EXPECT_NE(input_error([&] { read_events(h); }).find("no data lines"), std::string::npos);
}

TEST_F(DataRead, BadTimes) {
  for (const std::string bad : {"abc", "nan", "inf", "-inf", "1e400", "12x", ""}) {
    const auto p = write("t.tsv", "SessionId\tItemId\tTime\n1\t5\t1\n1\t6\t" + bad + "\n");
    const std::string msg = input_error([&] { read_events(p); });
    EXPECT_NE(msg.find("t.tsv:3"), std::string::npos) << bad << " -> " << msg;
    EXPECT_NE(msg.find("time"), std::string::npos) << msg;
  }
}

TEST_F(DataRead, WrongFieldCount) {
  const auto p = write("f.tsv", "SessionId\tItemId\tTime\n1\t5\t1\n1\t6\n");
  const std::string msg = input_error([&] { read_events(p); });
  EXPECT_NE(msg.find("f.tsv:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected 3 fields"), std::string::npos) << msg;
  const auto q = write("g.txt", "1 2\n1 3\n1 4 5\n");
  ReadOptions o;
  o.format = Format::Pairs;
  const std::string m2 = input_error([&] { read_events(q, o); });
  EXPECT_NE(m2.find("g.txt:3"), std::string::npos) << m2;
}

TEST_F(DataRead, EmptyIds) {
  const auto p = write("e.csv", "session,item,time\n1,a,1\n,b,2\n");
  EXPECT_NE(input_error([&] { read_events(p); }).find("e.csv:3: empty session id"),
            std::string::npos);
}

TEST_F(DataRead, AmbiguousFormat) {
  const auto p = write("amb.txt", "a b c\nd e f\n");
  const std::string msg = input_error([&] { read_events(p); });
  EXPECT_NE(msg.find("amb.txt:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--format"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sequences"), std::string::npos) << msg;
  const auto q = write("one.txt", "5\n6\n");
  EXPECT_NE(input_error([&] { read_events(q); }).find("--format"), std::string::npos);
  // ... and the explicit format resolves it.
  ReadOptions o;
  o.format = Format::Sequences;
  EXPECT_EQ(read_events(p, o).seqs.size(), 2u);
}

// RFC 4180 quoting (issue 17): "s,1" is one field, "" is a quote, a quoted field may span
// lines; the file was refused with "every line holds a single field".
TEST_F(DataRead, QuotedCsvIsRead) {
  const auto p = write("quoted.csv",
                       "\"s,1\",\"i,1\",\"1\"\n"
                       "\"s,1\",\"i\"\"2\"\"\",\"2\"\n"
                       "\"s,2\",\"i,1\",3\n"
                       "s3,plain,4\n"
                       "s3,\"i,1\",5\n");
  ReadInfo info;
  const EventLog log = read_events(p, {}, &info);
  EXPECT_EQ(info.format, Format::Delimited);
  EXPECT_NE(info.layout.find("quoted"), std::string::npos) << info.layout;
  EXPECT_EQ(log.seqs.ids, (Strings{"s,1", "s,2", "s3"}));
  EXPECT_EQ(tokens_of(log, 0), (Strings{"i,1", "i\"2\""}));
  EXPECT_EQ(tokens_of(log, 1), (Strings{"i,1"}));
  EXPECT_EQ(tokens_of(log, 2), (Strings{"plain", "i,1"}));
  EXPECT_DOUBLE_EQ(log.seqs.seq_times(2)[1], 5.0);

  // A header, CRLF, a quoted field with line breaks in a column that is not read, and the
  // line numbers of later errors still those of the file.
  const auto q = write("export.csv",
                       "\"user_id\",\"item_id\",\"timestamp\",\"review\"\r\n"
                       "u1,\"a\",10,\"good,\r\nvery good\"\r\n"
                       "u1,\"b\",11,\"\"\r\n"
                       "u2,\"a\",12,\"line one\nline two\nline three\"\r\n"
                       "u2,\"c\",oops,\"x\"\r\n");
  const std::string msg = input_error([&] { read_events(q); });
  EXPECT_NE(msg.find("export.csv:8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("oops"), std::string::npos) << msg;
  const auto q2 = write("export2.csv",
                        "\"user_id\",\"item_id\",\"timestamp\",\"review\"\n"
                        "u1,\"a\",10,\"good,\nvery good\"\n"
                        "u1,\"b\",11,\"\"\n");
  const EventLog e = read_events(q2);
  EXPECT_EQ(tokens_of(e, 0), (Strings{"a", "b"}));

  // Tab-separated with quotes, and a delimiter given explicitly.
  const auto t = write("quoted.tsv", "SessionId\tItemId\n\"a\tb\"\tx\n\"a\tb\"\ty\n");
  EXPECT_EQ(read_events(t).seqs.ids, (Strings{"a\tb"}));
  const auto sc = write("semi.txt", "\"1;2\";a\n\"1;2\";b\n\"3\";a\n");
  ReadOptions o;
  o.delimiter = ";";
  EXPECT_EQ(read_events(sc, o).seqs.ids, (Strings{"1;2", "3"}));
}

TEST_F(DataRead, QuotedCsvErrorsSayWhatIsUnsupported) {
  // A line break inside an id: ids are written one event per line, so it cannot be read.
  auto p = write("break.csv", "session,item,time\n\"s\n1\",a,1\n2,b,2\n");
  std::string msg = input_error([&] { read_events(p); });
  EXPECT_NE(msg.find("break.csv:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line break"), std::string::npos) << msg;
  EXPECT_NE(msg.find("column 'session'"), std::string::npos) << msg;
  // A quote never closed.
  p = write("open.csv", "session,item,time\n1,a,1\n\"2,b,2\n3,c,3\n");
  msg = input_error([&] { read_events(p); });
  EXPECT_NE(msg.find("open.csv:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("never closed"), std::string::npos) << msg;
  // Text after a closing quote: names the line and how quotes are written.
  p = write("after.csv", "session,item,time\n1,a,1\n\"2\"x,b,2\n");
  msg = input_error([&] { read_events(p); });
  EXPECT_NE(msg.find("after.csv:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("written twice"), std::string::npos) << msg;
  // A quote inside an unquoted field is an ordinary character.
  p = write("inner.csv", "session,item,time\n1,a\"b,1\n1,c,2\n");
  EXPECT_EQ(tokens_of(read_events(p), 0), (Strings{"a\"b", "c"}));
}

TEST_F(DataRead, UnknownFormatName) {
  EXPECT_EQ(parse_format("tsv"), Format::Delimited);
  EXPECT_EQ(parse_format("INTER"), Format::Inter);
  EXPECT_EQ(parse_format("sequences"), Format::Sequences);
  EXPECT_EQ(parse_format("pairs"), Format::Pairs);
  EXPECT_EQ(parse_format("auto"), Format::Auto);
  EXPECT_STREQ(format_name(Format::Pairs), "pairs");
  EXPECT_THROW(parse_format("parquet"), InputError);
}

TEST_F(DataRead, UnreadablePathNamesThePath) {
  const std::string p = path("does_not_exist.tsv");
  try {
    read_events(p);
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_events(dir_.string()), IoError);  // a directory
}

TEST_F(DataRead, BinaryJunkAndLongLinesNeverCrash) {
  std::mt19937 rng(7);
  for (int round = 0; round < 30; ++round) {
    std::string junk(1 + rng() % 5000, '\0');
    for (auto& c : junk) c = static_cast<char>(rng() % (round % 2 ? 256 : 128));
    const auto p = write("junk.bin", junk);
    try {
      const EventLog log = read_events(p);
      EXPECT_EQ(log.seqs.offsets.size(), log.seqs.size() + 1);
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("junk.bin"), std::string::npos) << e.what();
    }
  }
  const auto p = write("nul.tsv", std::string("SessionId\tItemId\tTime\n1\t5\0\t1\n", 30));
  EXPECT_NE(input_error([&] { read_events(p); }).find("nul.tsv:2"), std::string::npos);
  // One very long line (a 3 MB session) is fine.
  std::string line = "1";
  for (int i = 0; i < 500000; ++i) line += " " + std::to_string(i % 1000);
  const auto q = write("long.txt", line + "\n2 1 2\n");
  ReadOptions o;
  o.format = Format::Sequences;
  o.sequence_ids = 1;
  const EventLog log = read_events(q, o);
  EXPECT_EQ(log.seqs.length(0), 500000);
}

// ---- write_events ----

TEST_F(DataRead, WriteReadRoundTripAllFormats) {
  const auto src = write("in.tsv",
                         "SessionId\tItemId\tTime\n"
                         "s1\ta\t1396437466.94\n"
                         "s1\tb\t1396438212.318\n"
                         "s2\tc\t0.1\n"
                         "s2\ta\t1e-7\n"
                         "s3\tb\t5\n");
  const EventLog in = read_events(src);
  // Delimited keeps times exactly.
  const auto p = path("out.tsv");
  write_events(p, in.seqs, in.items, Format::Delimited);
  const EventLog back = read_events(p);
  EXPECT_EQ(back.seqs.ids, in.seqs.ids);
  EXPECT_EQ(back.seqs.offsets, in.seqs.offsets);
  EXPECT_EQ(back.seqs.times, in.seqs.times);
  EXPECT_EQ(back.items.tokens(), in.items.tokens());
  {
    std::ifstream f(p);
    std::string header;
    std::getline(f, header);
    EXPECT_EQ(header, "SessionId\tItemId\tTime");
  }
  // Inter.
  const auto pi = path("out.inter");
  write_events(pi, in.seqs, in.items, Format::Inter);
  const EventLog bi = read_events(pi);
  EXPECT_EQ(bi.seqs.times, in.seqs.times);
  EXPECT_EQ(bi.seqs.ids, in.seqs.ids);
  // Sequences and Pairs (no times).
  for (Format f : {Format::Sequences, Format::Pairs}) {
    const auto q = path(std::string("out.") + format_name(f));
    write_events(q, in.seqs, in.items, f);
    ReadOptions o;
    o.format = f;
    o.sequence_ids = 1;
    const EventLog b = read_events(q, o);
    EXPECT_EQ(b.seqs.ids, in.seqs.ids) << format_name(f);
    EXPECT_EQ(b.seqs.offsets, in.seqs.offsets) << format_name(f);
    for (size_t s = 0; s < in.seqs.size(); ++s) EXPECT_EQ(tokens_of(b, s), tokens_of(in, s));
  }
  // No temporary files are left behind.
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  }
}

TEST_F(DataRead, WriteWithoutTimesUsesOrdinals) {
  const auto src = write("p.txt", "u1 a\nu1 b\nu2 a\n");
  const EventLog in = read_events(src);
  const auto p = path("o.tsv");
  write_events(p, in.seqs, in.items);
  const EventLog back = read_events(p);
  EXPECT_EQ(back.seqs.times, (std::vector<double>{0, 1, 2}));
}

TEST_F(DataRead, WriteErrors) {
  const auto src = write("p.txt", "u1 a\nu1 b\n");
  const EventLog in = read_events(src);
  EXPECT_THROW(write_events(path("no/such/dir/x.tsv"), in.seqs, in.items), IoError);
  Vocab v;
  v.add("has space");
  SequenceSet s;
  std::vector<int32_t> one{0};
  s.push("u", one);
  EXPECT_THROW(write_events(path("x.txt"), s, v, Format::Sequences), InputError);
  EXPECT_NO_THROW(write_events(path("x.tsv"), s, v, Format::Delimited));
}

// ---- binary cache ----

TEST_F(DataRead, CacheHitAndRebuild) {
  const auto src = write("c.tsv", "SessionId\tItemId\tTime\n1\t5\t1\n1\t6\t2\n2\t5\t3\n");
  ReadOptions o;
  o.cache_dir = path("cache");
  ReadInfo i1, i2, i3;
  const EventLog a = read_events(src, o, &i1);
  EXPECT_FALSE(i1.from_cache);
  EXPECT_TRUE(i1.cache_written) << i1.cache_note;
  EXPECT_TRUE(std::filesystem::exists(i1.cache_path));
  EXPECT_EQ(i1.cache_path, cache_file_for(src, o));
  EXPECT_EQ(std::filesystem::path(i1.cache_path).parent_path(), std::filesystem::path(o.cache_dir));
  const EventLog b = read_events(src, o, &i2);
  EXPECT_TRUE(i2.from_cache);
  EXPECT_EQ(i2.format, Format::Delimited);
  EXPECT_EQ(b.seqs.ids, a.seqs.ids);
  EXPECT_EQ(b.seqs.offsets, a.seqs.offsets);
  EXPECT_EQ(b.seqs.items, a.seqs.items);
  EXPECT_EQ(b.seqs.times, a.seqs.times);
  EXPECT_EQ(b.items.tokens(), a.items.tokens());
  EXPECT_EQ(b.items.find("6"), a.items.find("6"));
  EXPECT_EQ(b.source, src);
  // Different options -> a different cache file.
  ReadOptions o2 = o;
  o2.time_col = "none";
  EXPECT_NE(cache_file_for(src, o2), i1.cache_path);
  // Changing the source (size and mtime) rebuilds.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  write("c.tsv", "SessionId\tItemId\tTime\n1\t5\t1\n1\t6\t2\n2\t5\t3\n3\t7\t4\n");
  const EventLog c = read_events(src, o, &i3);
  EXPECT_FALSE(i3.from_cache);
  EXPECT_NE(i3.cache_path, i1.cache_path);
  EXPECT_EQ(c.seqs.size(), 3u);
}

TEST_F(DataRead, CorruptCacheFallsBackToParsing) {
  const auto src = write("c.tsv", "SessionId\tItemId\tTime\n1\t5\t1\n1\t6\t2\n");
  ReadOptions o;
  o.cache_dir = path("cache");
  ReadInfo info;
  read_events(src, o, &info);
  const std::string cache = info.cache_path;
  for (const std::string bad : {std::string("garbage"), std::string()}) {
    {
      std::ofstream f(cache, std::ios::binary | std::ios::trunc);
      f << bad;
    }
    const EventLog log = read_events(src, o, &info);
    EXPECT_FALSE(info.from_cache);
    EXPECT_EQ(log.seqs.n_events(), 2);
  }
  // Truncated valid cache.
  read_events(src, o, &info);
  const auto size = std::filesystem::file_size(cache);
  std::filesystem::resize_file(cache, size - 3);
  EXPECT_FALSE((read_events(src, o, &info), info.from_cache));
  EXPECT_TRUE((read_events(src, o, &info), info.from_cache));  // rewritten
}

// The format byte (offset 13: magic 8, version 4, then the flags' second byte) was read
// unchecked and cast to a Format; any value but a concrete format must be refused and the
// cache rebuilt.
TEST_F(DataRead, CacheWithAnUnknownFormatByteIsRebuilt) {
  const auto src = write("f.tsv", "SessionId\tItemId\tTime\n1\t5\t1\n1\t6\t2\n");
  ReadOptions o;
  o.cache_dir = path("cache");
  ReadInfo info;
  read_events(src, o, &info);
  const std::string cache = info.cache_path;
  for (const unsigned char byte : {0, 5, 99, 255}) {  // Auto, past Pairs, nonsense
    {
      std::fstream f(cache, std::ios::binary | std::ios::in | std::ios::out);
      f.seekp(13);
      f.put(static_cast<char>(byte));
    }
    const EventLog log = read_events(src, o, &info);
    EXPECT_FALSE(info.from_cache) << int(byte);
    EXPECT_NE(info.cache_note.find("unknown format byte"), std::string::npos)
        << int(byte) << ": " << info.cache_note;
    EXPECT_EQ(log.seqs.n_events(), 2);
    EXPECT_EQ(info.format, Format::Delimited);
    EXPECT_TRUE(info.cache_written) << info.cache_note;  // rebuilt
    EXPECT_TRUE((read_events(src, o, &info), info.from_cache));
  }
}

TEST_F(DataRead, ReadOnlyInputAndUnwritableCacheStillRead) {
  std::filesystem::create_directories(path("ro"));
  const auto p = write("ro/c.tsv", "SessionId\tItemId\tTime\n1\t5\t1\n");
  std::filesystem::permissions(
      path("ro"), std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  ReadOptions o;
  o.cache_dir = path("cache");
  ReadInfo info;
  EXPECT_EQ(read_events(p, o, &info).seqs.n_events(), 1);
  EXPECT_TRUE(info.cache_written);
  o.cache_dir = path("ro/cache");  // cannot be created (unless running as root)
  EXPECT_EQ(read_events(p, o, &info).seqs.n_events(), 1);
}

}  // namespace
}  // namespace seqrec

namespace seqrec {
namespace {

class EventColumnsTest : public test::DataTmp {};

TEST_F(EventColumnsTest, GroupsLikeTheReader) {
  // The same events as a file and as columns (indices in order of first appearance).
  const auto p = write("clicks.tsv",
                       "SessionId\tItemId\tTime\n"
                       "2\t10\t100.5\n"
                       "1\t11\t50\n"
                       "1\t12\t40\n"
                       "2\t13\t101\n"
                       "1\t14\t40\n");
  const EventLog file = read_events(p);
  EventColumns c;
  c.seq = {0, 1, 1, 0, 1};
  c.seq_ids = {"2", "1"};
  c.item = {0, 1, 2, 3, 4};
  c.item_ids = {"10", "11", "12", "13", "14"};
  c.time = {100.5, 50, 40, 101, 40};
  c.source = "frame";
  const EventLog cols = events_from_columns(c);
  EXPECT_EQ(cols.items.tokens(), file.items.tokens());
  EXPECT_EQ(cols.seqs.ids, file.seqs.ids);
  EXPECT_EQ(cols.seqs.offsets, file.seqs.offsets);
  EXPECT_EQ(cols.seqs.items, file.seqs.items);
  EXPECT_EQ(cols.seqs.times, file.seqs.times);
  EXPECT_EQ(cols.source, "frame");
}

TEST_F(EventColumnsTest, MillisecondsAreDetectedAndBadColumnsAreInputErrors) {
  EventColumns c;
  c.seq = {0, 0};
  c.seq_ids = {"s"};
  c.item = {0, 1};
  c.item_ids = {"a", "b"};
  c.time = {1.7e12, 1.7e12 + 1000};
  ReadInfo info;
  const EventLog log = events_from_columns(c, {}, &info);
  EXPECT_EQ(info.time_unit, "ms");
  EXPECT_DOUBLE_EQ(log.seqs.times[1] - log.seqs.times[0], 1.0);

  auto with = [&](auto edit) {
    EventColumns d = c;
    d.source = "frame";
    edit(d);
    return test::input_error([&] { events_from_columns(d); });
  };
  EXPECT_NE(with([](EventColumns& d) { d.time[1] = std::nan(""); }).find("frame:2: time is NaN"),
            std::string::npos);
  EXPECT_NE(with([](EventColumns& d) { d.item[0] = 5; }).find("item index 5"), std::string::npos);
  EXPECT_NE(with([](EventColumns& d) { d.seq[1] = -1; }).find("sequence index"), std::string::npos);
  EXPECT_NE(with([](EventColumns& d) { d.time.pop_back(); }).find("different lengths"),
            std::string::npos);
  EXPECT_NE(with([](EventColumns& d) { d.item_ids[1] = "a"; }).find("twice"), std::string::npos);
  EXPECT_NE(with([](EventColumns& d) {
              d.item.clear();
              d.seq.clear();
              d.time.clear();
            }).find("no events"),
            std::string::npos);
}

}  // namespace
}  // namespace seqrec
