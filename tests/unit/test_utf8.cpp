// Text that ends up in JSON is UTF-8: checked where it is typed, counted in
// characters in messages, and replaced (never thrown on) where an older
// version's file still holds other bytes.
#include <gtest/gtest.h>

#include <sstream>

#include "base/errors.h"
#include "output/json.h"
#include "output/rules.h"
#include "text/rule_options.h"
#include "text/rule_set.h"
#include "text/utf8.h"

namespace smtpfence {
namespace {

std::string repeat(const std::string& s, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += s;
    return out;
}

std::string usage_error(void (*check)(const std::string&), const std::string& text) {
    try {
        check(text);
    } catch (const UsageError& e) {
        return e.what();
    }
    return "";
}

TEST(Utf8, CountsCharactersOfWellFormedText) {
    EXPECT_EQ(utf8_length("").value_or(99), 0u);
    EXPECT_EQ(utf8_length("notifier storm").value_or(99), 14u);
    EXPECT_EQ(utf8_length("Grüße").value_or(99), 5u);
    EXPECT_EQ(utf8_length("\xe2\x82\xac \xf0\x9f\x93\xa7").value_or(99), 3u);  // € and 📧
}

TEST(Utf8, RefusesWhatIsNotUtf8) {
    EXPECT_FALSE(utf8_length("caf\xe9"));           // Latin-1 é
    EXPECT_FALSE(utf8_length("\xc3"));              // cut short
    EXPECT_FALSE(utf8_length("\xc0\xaf"));          // overlong '/'
    EXPECT_FALSE(utf8_length("\xe0\x80\xaf"));      // overlong, 3 bytes
    EXPECT_FALSE(utf8_length("\xed\xa0\x80"));      // a surrogate
    EXPECT_FALSE(utf8_length("\xf4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_FALSE(utf8_length("\x80"));              // a lone continuation
}

TEST(Reason, ALatin1ByteIsRefusedWithItsPositionAndTheFix) {
    const std::string message = usage_error(check_reason, "caf\xe9 storm");
    EXPECT_EQ(message,
              "--reason is not UTF-8 (byte 0xE9 at position 4): write it in UTF-8 (a terminal or script in "
              "Latin-1? check `locale`, or convert with `iconv -f latin1 -t utf-8`); nothing was changed");
}

TEST(Reason, LengthIsSaidInCharactersAndBytes) {
    // The kernel keeps 119 bytes: 59 ü fit (118 bytes), 60 do not.
    EXPECT_EQ(usage_error(check_reason, repeat("ü", 59)), "");
    EXPECT_EQ(usage_error(check_reason, repeat("ü", 60)),
              "--reason is 60 characters, 120 bytes in UTF-8; at most 119 bytes fit (119 characters of ASCII, "
              "fewer of others: ü takes 2 bytes): say it shorter");
    EXPECT_EQ(usage_error(check_reason, repeat("a", 119)), "");
    EXPECT_EQ(usage_error(check_reason, repeat("a", 120)),
              "--reason is 120 characters; at most 119 fit: say it shorter");
}

TEST(Reason, AStateFileOfAnOlderVersionStillLoads) {
    // Written before input was checked: the rule must restore at boot.
    const RuleSet set = parse_rule_set("block 203.0.113.0/24 --reason \"caf\xe9\"\n", "old.rules");
    ASSERT_EQ(set.rules.size(), 1u);
    EXPECT_EQ(set.rules[0].reason, "caf\xe9");
}

TEST(Json, ABadByteFromAnOldFileBecomesAReplacementCharacter) {
    Rule rule;
    rule.cidr = parse_cidr("203.0.113.0/24").cidr;
    rule.action = Action::Block;
    rule.reason = "caf\xe9 storm";
    std::ostringstream out;
    ASSERT_NO_THROW(print_json(out, rules_json({rule}, 1795600000, 0)));
    const auto parsed = nlohmann::json::parse(out.str());
    EXPECT_EQ(parsed["rules"][0]["reason"], "caf\xef\xbf\xbd storm");  // U+FFFD
    EXPECT_EQ(parsed["rules"][0]["cidr"], "203.0.113.0/24");
}

}  // namespace
}  // namespace smtpfence
