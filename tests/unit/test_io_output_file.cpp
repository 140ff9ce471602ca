// io::OutputFile and io::check_output: what every writer of seqrec does with each kind of path.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "io/output_file.hpp"
#include "seqrec/error.hpp"

namespace fs = std::filesystem;
using seqrec::io::FileKind;
using seqrec::io::OutputFile;

namespace {

class OutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("seqrec_out_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  static void put(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
  }
  static std::string get(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  /// Names in the folder (a temporary file left behind would show here).
  size_t entries() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), {}));
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "(no error)";
  }
  fs::path dir_;
};

}  // namespace

TEST_F(OutputFileTest, AbsentAndRegularFilesAreReplacedAtomically) {
  seqrec::io::write_file(p("new.txt"), "one\n");
  EXPECT_EQ(get(p("new.txt")), "one\n");
  // The mode of a normal create: 0666 less the umask.
  const mode_t mask = ::umask(022);
  ::umask(mask);
  EXPECT_EQ(fs::status(p("new.txt")).permissions() & fs::perms::all,
            static_cast<fs::perms>(0666 & ~mask));
  // An existing file keeps its permission bits, and is a new inode (renamed over).
  fs::permissions(p("new.txt"), static_cast<fs::perms>(0640));
  struct stat before {};
  ASSERT_EQ(::stat(p("new.txt").c_str(), &before), 0);
  {
    OutputFile f(p("new.txt"));
    EXPECT_TRUE(f.atomic());
    f.write("two\n");
    // Until commit() the old content is what readers see.
    EXPECT_EQ(get(p("new.txt")), "one\n");
    f.commit();
  }
  EXPECT_EQ(get(p("new.txt")), "two\n");
  EXPECT_EQ(fs::status(p("new.txt")).permissions() & fs::perms::all, static_cast<fs::perms>(0640));
  struct stat after {};
  ASSERT_EQ(::stat(p("new.txt").c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino);
  EXPECT_EQ(entries(), 1u) << "a temporary file was left behind";
  // Committing without writing gives an empty file.
  {
    OutputFile f(p("empty.txt"));
    f.commit();
  }
  EXPECT_TRUE(fs::exists(p("empty.txt")));
  EXPECT_EQ(fs::file_size(p("empty.txt")), 0u);
}

TEST_F(OutputFileTest, FailureOrExceptionLeavesTheOldFileIntact) {
  put(p("keep.txt"), "precious\n");
  {
    OutputFile f(p("keep.txt"));
    f.write("half of a new ");
  }  // destroyed without commit
  EXPECT_EQ(get(p("keep.txt")), "precious\n");
  EXPECT_EQ(entries(), 1u);
  try {
    OutputFile f(p("keep.txt"));
    f.write("half");
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(get(p("keep.txt")), "precious\n");
  EXPECT_EQ(entries(), 1u);
  // Constructing (the check before a long job) leaves nothing behind either.
  { OutputFile f(p("not_yet.txt")); }
  EXPECT_FALSE(fs::exists(p("not_yet.txt")));
  EXPECT_EQ(entries(), 1u);
  // A missing folder is an error naming the path, at construction.
  const std::string e = error_of([&] { OutputFile f(p("no/such/dir/x.txt")); });
  EXPECT_NE(e.find("no/such/dir/x.txt"), std::string::npos) << e;
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
}

TEST_F(OutputFileTest, ReadOnlyFileOrFolderIsRefused) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores permissions";
  put(p("ro.txt"), "read only\n");
  fs::permissions(p("ro.txt"), static_cast<fs::perms>(0444));
  std::string e = error_of([&] { seqrec::io::write_file(p("ro.txt"), "x"); });
  EXPECT_NE(e.find("ro.txt"), std::string::npos) << e;
  EXPECT_EQ(get(p("ro.txt")), "read only\n");
  fs::create_directories(p("locked"));
  fs::permissions(p("locked"), static_cast<fs::perms>(0555));
  e = error_of([&] { OutputFile f(p("locked/x.txt")); });
  EXPECT_NE(e.find("locked/x.txt"), std::string::npos) << e;
  fs::permissions(p("locked"), static_cast<fs::perms>(0755));
}

TEST_F(OutputFileTest, SymlinkTargetIsWrittenAndTheLinkStays) {
  fs::create_directories(p("real"));
  put(p("real/target.txt"), "old\n");
  fs::create_symlink("real/target.txt", p("link.txt"));  // relative link
  seqrec::io::write_file(p("link.txt"), "new\n");
  EXPECT_TRUE(fs::is_symlink(p("link.txt")));
  EXPECT_EQ(get(p("real/target.txt")), "new\n");
  EXPECT_EQ(fs::directory_iterator(p("real"))->path().filename(), "target.txt");
  // A chain of links, the last one dangling: its target is created, the links stay.
  fs::create_symlink(p("real/later.txt"), p("dangling"));
  fs::create_symlink(p("dangling"), p("chain"));
  seqrec::io::write_file(p("chain"), "created\n");
  EXPECT_TRUE(fs::is_symlink(p("chain")));
  EXPECT_TRUE(fs::is_symlink(p("dangling")));
  EXPECT_EQ(get(p("real/later.txt")), "created\n");
  // A loop of links is an error, not a hang.
  fs::create_symlink(p("loop_b"), p("loop_a"));
  fs::create_symlink(p("loop_a"), p("loop_b"));
  const std::string e = error_of([&] { OutputFile f(p("loop_a")); });
  EXPECT_NE(e.find("symbolic links"), std::string::npos) << e;
}

TEST_F(OutputFileTest, PlantedLinksAtPredictableTemporaryNamesAreNotFollowed) {
  put(p("victim.txt"), "victim\n");
  const std::string target = p("out.txt");
  const std::string pid = std::to_string(::getpid());
  // The names the writers used before: F.tmp, F.tmp.<pid>, F.tmp-<pid>-<n>.
  for (const std::string& s :
       {std::string(".tmp"), ".tmp." + pid, ".tmp-" + pid + "-0", ".tmp-" + pid + "-1"})
    fs::create_symlink(p("victim.txt"), target + s);
  for (int i = 0; i < 3; ++i) seqrec::io::write_file(target, "port 1234\n");
  EXPECT_EQ(get(p("victim.txt")), "victim\n");
  EXPECT_EQ(get(target), "port 1234\n");
  for (const std::string& s : {std::string(".tmp"), ".tmp." + pid, ".tmp-" + pid + "-0"})
    EXPECT_TRUE(fs::is_symlink(target + s)) << s;
}

TEST_F(OutputFileTest, CharacterDeviceIsWrittenThroughAndStaysADevice) {
  // /dev/null: written through (as anyone may), never replaced. Run as root, the old
  // writers replaced it with a regular file.
  {
    OutputFile f("/dev/null");
    EXPECT_FALSE(f.atomic());
    f.write("into the void\n");
    f.commit();
  }
  seqrec::io::write_file("/dev/null", "again\n");
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  // A link to it (as /dev/stdout is, through /proc/self/fd) is written through too.
  fs::create_symlink("/dev/null", p("null_link"));
  seqrec::io::write_file(p("null_link"), "x\n");
  EXPECT_TRUE(fs::is_symlink(p("null_link")));
  EXPECT_EQ(entries(), 1u);
}

TEST_F(OutputFileTest, DescriptorPathsAppendToTheOpenFile) {
  // /dev/fd/N of a file opened by the "shell": written in place after what is there.
  put(p("stdout.txt"), "table\n");
  const int fd = ::open(p("stdout.txt").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  seqrec::io::write_file("/dev/fd/" + std::to_string(fd), "{\"json\": 1}\n");
  ::close(fd);
  EXPECT_EQ(get(p("stdout.txt")), "table\n{\"json\": 1}\n");
}

TEST_F(OutputFileTest, FifoWithoutReaderIsAnErrorAndWithReaderIsWrittenThrough) {
  ASSERT_EQ(::mkfifo(p("fifo").c_str(), 0600), 0);
  // No reader: an error at once, not a hang in open().
  const auto t0 = std::chrono::steady_clock::now();
  const std::string e = error_of([&] { OutputFile f(p("fifo")); });
  EXPECT_NE(e.find("no process is reading"), std::string::npos) << e;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  // A reader: the data arrives through the FIFO, which stays a FIFO.
  const int rfd = ::open(p("fifo").c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(rfd, 0);
  {
    OutputFile f(p("fifo"));
    EXPECT_FALSE(f.atomic());
    f.write("through the pipe\n");
    f.commit();
  }
  char buf[64] = {};
  const ssize_t n = ::read(rfd, buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "through the pipe\n");
  // The reader goes away: a write is an error (EPIPE), not a SIGPIPE that kills the process.
  OutputFile f(p("fifo"));
  ::close(rfd);
  const std::string e2 = error_of([&] { f.write(std::string(1 << 16, 'x')); });
  EXPECT_NE(e2.find("closed"), std::string::npos) << e2;
  struct stat st {};
  ASSERT_EQ(::lstat(p("fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(OutputFileTest, FoldersAndSocketsAreRefusedNamingThePath) {
  fs::create_directories(p("folder"));
  std::string e = error_of([&] { OutputFile f(p("folder")); });
  EXPECT_NE(e.find("folder"), std::string::npos) << e;
  EXPECT_NE(e.find("is a folder"), std::string::npos) << e;
  EXPECT_TRUE(fs::is_directory(p("folder")));
  const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string sp = p("sock");
  if (sp.size() < sizeof addr.sun_path) {
    std::memcpy(addr.sun_path, sp.c_str(), sp.size() + 1);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    e = error_of([&] { seqrec::io::write_file(sp, "x"); });
    EXPECT_NE(e.find("is a socket"), std::string::npos) << e;
    EXPECT_TRUE(fs::is_socket(sp));
  }
  ::close(s);
}

TEST_F(OutputFileTest, KindsAreToldApartByContent) {
  EXPECT_FALSE(seqrec::io::existing_kind(p("absent")).has_value());
  put(p("empty"), "");
  EXPECT_FALSE(seqrec::io::existing_kind(p("empty")).has_value());
  put(p("log.tsv"), "SessionId\tItemId\tTime\n1\t2\t3\n");
  EXPECT_EQ(seqrec::io::existing_kind(p("log.tsv")), FileKind::Text);
  put(p("m.json"), "\n  {\"a\": 1}\n");
  EXPECT_EQ(seqrec::io::existing_kind(p("m.json")), FileKind::Json);
  put(p("bin"), std::string("\x01\x02\x00\x03", 4));
  EXPECT_EQ(seqrec::io::existing_kind(p("bin")), FileKind::Other);
  put(p("fake.seqrec"), std::string("SQRCMODL") + std::string(40, '\0'));
  EXPECT_EQ(seqrec::io::existing_kind(p("fake.seqrec")), FileKind::Model);
  EXPECT_FALSE(seqrec::io::existing_kind("/dev/null").has_value());
}

TEST_F(OutputFileTest, CheckOutputRefusesInputsAndOtherKinds) {
  using seqrec::io::check_output;
  put(p("log.tsv"), "SessionId\tItemId\n1\t2\n");
  put(p("m.json"), "{}\n");
  // The output is the input: refused, even with force, also under another name.
  std::string e = error_of([&] {
    check_output({p("log.tsv"), "-o"}, {{p("log.tsv"), "the input data"}}, FileKind::Model, true);
  });
  EXPECT_NE(e.find("is the input data"), std::string::npos) << e;
  fs::create_symlink(p("log.tsv"), p("alias.tsv"));
  fs::create_hard_link(p("log.tsv"), p("hard.tsv"));
  for (const char* other : {"alias.tsv", "hard.tsv"}) {
    e = error_of([&] {
      check_output({p(other), "-o"}, {{p("log.tsv"), "the input data"}}, FileKind::Text, true);
    });
    EXPECT_NE(e.find("is the input data"), std::string::npos) << other << ": " << e;
    EXPECT_NE(e.find("log.tsv"), std::string::npos) << e;
  }
  // Another kind: refused without force, naming both kinds and --force.
  e = error_of([&] { check_output({p("log.tsv"), "--json"}, {}, FileKind::Json, false); });
  EXPECT_NE(e.find("is a text file"), std::string::npos) << e;
  EXPECT_NE(e.find("a JSON file"), std::string::npos) << e;
  EXPECT_NE(e.find("--force"), std::string::npos) << e;
  EXPECT_EQ(error_of([&] {
              check_output({p("log.tsv"), "--json"}, {}, FileKind::Json, true);
            }),
            "(no error)");
  // The same kind, an absent file, an empty file, a device: written.
  EXPECT_EQ(error_of([&] {
              check_output({p("m.json"), "--json"}, {}, FileKind::Json, false);
            }),
            "(no error)");
  EXPECT_EQ(error_of([&] {
              check_output({p("new"), "-o"}, {}, FileKind::Model, false);
            }),
            "(no error)");
  EXPECT_EQ(error_of([&] {
              check_output({"/dev/null", "-o"}, {}, FileKind::Model, false);
            }),
            "(no error)");
  // Unrelated inputs and empty names are ignored.
  EXPECT_EQ(error_of([&] {
              check_output({p("m.json"), "--json"},
                           {{"", "x"}, {p("absent"), "y"}, {p("log.tsv"), "z"}}, FileKind::Json,
                           false);
            }),
            "(no error)");
}
