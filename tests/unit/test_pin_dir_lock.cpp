// The pin-directory lock: a change that finds it taken says who holds it, and
// gives up after its timeout with what to do.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "base/errors.h"
#include "base/unique_fd.h"
#include "bpf/pin_dir.h"

namespace smtpfence {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

TEST(FlockHolder, FindsTheHolderOfTheFileAndSkipsWaiters) {
    const char* locks =
        "1: POSIX  ADVISORY  WRITE 900 fe:01:77 0 EOF\n"
        "2: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF\n"
        "2: -> FLOCK  ADVISORY  WRITE 4321 00:1f:5678 0 EOF\n"
        "3: FLOCK  ADVISORY  WRITE 777 fe:01:5678 0 EOF\n";
    EXPECT_EQ(flock_holder(locks, makedev(0x00, 0x1f), 5678).value_or(-1), 1234);
    EXPECT_EQ(flock_holder(locks, makedev(0xfe, 0x01), 5678).value_or(-1), 777);
    EXPECT_FALSE(flock_holder(locks, makedev(0xfe, 0x01), 77));  // a POSIX lock is not ours
    EXPECT_FALSE(flock_holder(locks, makedev(0x00, 0x1f), 1));
    EXPECT_FALSE(flock_holder("", makedev(0, 0), 0));
}

TEST(FlockHolder, DescribesAProcessByItsCommandLine) {
    const std::string me = describe_process(getpid());
    EXPECT_EQ(me.rfind("pid " + std::to_string(getpid()) + " (", 0), 0u) << me;
    EXPECT_NE(me.find("unit_tests"), std::string::npos) << me;
    EXPECT_EQ(describe_process(std::nullopt), "another process");
    EXPECT_EQ(describe_process(0), "another process");
}

class PinDirLockTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("smtpfence-lock-" + std::to_string(getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    // Another open file description holding the lock, as another run would.
    UniqueFd hold() {
        UniqueFd fd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        EXPECT_EQ(::flock(fd.get(), LOCK_EX | LOCK_NB), 0);
        return fd;
    }
    fs::path dir_;
};

TEST_F(PinDirLockTest, TakesAFreeLockAtOnceAndSaysNothing) {
    std::ostringstream notice;
    { PinDirLock lock(dir_.string(), LockWait{milliseconds{0}, &notice}); }
    { PinDirLock again(dir_.string(), LockWait{milliseconds{0}, &notice}); }  // released with the first
    EXPECT_EQ(notice.str(), "");
}

TEST_F(PinDirLockTest, NamesTheHolderOnceAndGivesUpAfterTheTimeout) {
    UniqueFd held = hold();
    std::ostringstream notice;
    const auto start = std::chrono::steady_clock::now();
    try {
        PinDirLock lock(dir_.string(), LockWait{milliseconds{1200}, &notice});
        FAIL() << "took a lock that is held";
    } catch (const RuntimeError& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("gave up after 1.2 s waiting for pid " + std::to_string(getpid()) + " ("),
                  std::string::npos)
            << message;
        EXPECT_NE(message.find("holds the lock on " + dir_.string()), std::string::npos) << message;
        EXPECT_NE(message.find("nothing was changed"), std::string::npos) << message;
        EXPECT_NE(message.find("--lock-timeout"), std::string::npos) << message;
    }
    const auto waited = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
    EXPECT_GE(waited.count(), 1200);
    EXPECT_LT(waited.count(), 3000);
    const std::string said = notice.str();
    EXPECT_EQ(said.rfind("smtpfence: waiting for pid " + std::to_string(getpid()) + " (", 0), 0u) << said;
    EXPECT_EQ(std::count(said.begin(), said.end(), '\n'), 1) << said;
}

TEST_F(PinDirLockTest, TakesTheLockOnceItsHolderLetsGo) {
    UniqueFd held = hold();
    std::thread release([&] {
        std::this_thread::sleep_for(milliseconds{200});
        held = UniqueFd();
    });
    const auto start = std::chrono::steady_clock::now();
    EXPECT_NO_THROW(PinDirLock(dir_.string(), LockWait{milliseconds{10'000}, nullptr}));
    EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds{200});  // it did wait
    release.join();
}

}  // namespace
}  // namespace smtpfence
