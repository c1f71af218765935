// Strict mode (SMTPFENCE_TESTS_STRICT=1, set by CI): a test that would skip
// fails instead, so that a regressed precondition check cannot leave a tier
// unrun while the suite stays green. The shell side is harness_skip.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace smtpfence::test_support {

inline bool strict_mode() {
    const char* v = std::getenv("SMTPFENCE_TESTS_STRICT");
    return v != nullptr && std::string_view(v) == "1";
}

}  // namespace smtpfence::test_support

// SMTPFENCE_SKIP(why): GTEST_SKIP() << why, or in strict mode a fatal failure
// that says why. Like GTEST_SKIP, it returns from the current function.
#define SMTPFENCE_SKIP(why)                                                                                   \
    do {                                                                                                      \
        if (::smtpfence::test_support::strict_mode())                                                         \
            GTEST_FAIL() << "SMTPFENCE_TESTS_STRICT=1 makes a skip a failure; this test would skip: " << why; \
        GTEST_SKIP() << why;                                                                                  \
    } while (0)
