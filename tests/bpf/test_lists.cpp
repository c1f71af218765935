// Imported lists: the compiled list set against a brute-force longest-prefix
// match, the XDP program against the compiled set on crafted SYNs, and the
// lists against the rules (longest prefix decides; a rule for the same prefix
// wins), publication (a re-import replaces the list whole), expiry and
// unimport. Needs root; skipped otherwise.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>
#include <random>
#include <string>
#include <vector>

#include "bpf_test_support.h"
#include "verdict_fixture.h"
#include "fence/list_set.h"
#include "fence/lists.h"
#include "fence/observe.h"
#include "smtpfence_abi.h"
#include "text/cidr.h"
#include "text/durations.h"

using namespace smtpfence;
using namespace smtpfence::bpftest;

namespace {

Cidr masked(Cidr cidr, uint8_t prefixlen) {
    cidr.prefixlen = prefixlen;
    for (size_t bit = prefixlen; bit < 128; ++bit) cidr.addr[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
    return cidr;
}

// Random addresses near a few bases, so that prefixes nest and overlap.
class Draw {
public:
    explicit Draw(uint32_t seed) : rng_(seed) {}

    Cidr address(Family family) {
        Cidr a = parse_cidr(family == Family::V4 ? kBases4[pick(std::size(kBases4))] : kBases6[pick(std::size(kBases6))])
                     .cidr;
        const size_t width = family == Family::V4 ? 4 : 16;
        // Randomise the bits past the first 8 (v4) or 32 (v6): close enough to nest.
        for (size_t i = family == Family::V4 ? 1 : 4; i < width; ++i) {
            if (pick(4) != 0) a.addr[i] = static_cast<uint8_t>(rng_());
        }
        // Now and then another /32 (v6), where the address has no gate.
        if (family == Family::V6 && pick(8) == 0) a.addr[3] = static_cast<uint8_t>(rng_());
        a.prefixlen = family == Family::V4 ? 32 : 128;
        return a;
    }
    Cidr prefix(Family family) {
        const Cidr a = address(family);
        const uint8_t len = family == Family::V4 ? static_cast<uint8_t>(8 + pick(25))
                                                 : static_cast<uint8_t>(16 + pick(113));
        return masked(a, len);
    }
    size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

private:
    static constexpr const char* kBases4[] = {"203.0.113.0", "198.51.100.0", "203.0.0.0"};
    static constexpr const char* kBases6[] = {"2001:db8::", "2001:db8:bad::", "2001:db8:ffff::"};
    std::mt19937 rng_;
};

struct TestList {
    uint32_t index;
    uint32_t rank;
    std::vector<Cidr> v4, v6;
};

// The FENCE_LIST_HIT a plain scan finds: the longest prefix; the lowest rank.
uint32_t brute_force(const std::vector<TestList>& lists, const Cidr& address) {
    int best_len = -1;
    uint32_t best_rank = 0, hit = 0;
    for (const TestList& list : lists) {
        for (const Cidr& p : address.family == Family::V4 ? list.v4 : list.v6) {
            if (!p.contains(address)) continue;
            if (p.prefixlen > best_len || (p.prefixlen == best_len && list.rank < best_rank)) {
                best_len = p.prefixlen;
                best_rank = list.rank;
                hit = FENCE_LIST_HIT(list.index, p.prefixlen);
            }
        }
    }
    return hit;
}

std::vector<TestList> random_lists(Draw& draw, size_t lists, size_t per_list) {
    std::vector<TestList> out;
    for (uint32_t i = 0; i < lists; ++i) {
        TestList list{.index = i * 3 + 1, .rank = (i * 7) % static_cast<uint32_t>(lists), .v4 = {}, .v6 = {}};
        for (size_t n = 0; n < per_list; ++n) {
            const Cidr p = draw.prefix(draw.pick(2) ? Family::V4 : Family::V6);
            (p.family == Family::V4 ? list.v4 : list.v6).push_back(p);
        }
        for (auto* v : {&list.v4, &list.v6}) {
            std::sort(v->begin(), v->end());
            v->erase(std::unique(v->begin(), v->end()), v->end());
        }
        out.push_back(std::move(list));
    }
    return out;
}

TEST(ListSetCompiler, FindsTheLongestPrefixAndTheWinningListLikeAPlainScan) {
    for (uint32_t seed = 1; seed <= 20; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        Draw draw(seed);
        const std::vector<TestList> lists = random_lists(draw, 4, 60);
        std::vector<ListToCompile> inputs;
        for (const TestList& l : lists) inputs.push_back({l.index, l.rank, &l.v4, &l.v6});
        const CompiledListSet set = compile_list_set(inputs);
        for (int n = 0; n < 2000; ++n) {
            const Cidr a = draw.address(n % 2 ? Family::V4 : Family::V6);
            ASSERT_EQ(lookup_compiled(set, a), brute_force(lists, a)) << format_cidr(a);
        }
    }
}

TEST(ListSetCompiler, SamePrefixInTwoListsGoesToTheLowerRank) {
    const std::vector<Cidr> a4 = {parse_cidr("203.0.113.0/24").cidr}, a6 = {parse_cidr("2001:db8::/32").cidr};
    const std::vector<ListToCompile> inputs = {{5, 1, &a4, &a6}, {9, 0, &a4, &a6}};
    const CompiledListSet set = compile_list_set(inputs);
    EXPECT_EQ(lookup_compiled(set, parse_cidr("203.0.113.9").cidr), FENCE_LIST_HIT(9, 24));
    EXPECT_EQ(lookup_compiled(set, parse_cidr("2001:db8::9").cidr), FENCE_LIST_HIT(9, 32));
    EXPECT_EQ(lookup_compiled(set, parse_cidr("203.0.114.9").cidr), 0u);
}

class Lists : public PinnedFenceTest {
protected:
    void SetUp() override {
        PinnedFenceTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        store_ = std::filesystem::temp_directory_path() / ("smtpfence-lists-test-" + std::to_string(getpid()));
        std::filesystem::remove_all(store_);
        lists_.emplace(FenceLists::open(pin_dir(), store_.string()));
    }
    void TearDown() override {
        lists_.reset();
        std::filesystem::remove_all(store_);
        PinnedFenceTest::TearDown();
    }

    ImportSummary import(const std::string& name, Action action, const std::vector<std::string>& prefixes,
                         uint64_t expires_unix = 0) {
        StoredList list;
        list.name = name;
        list.action = action;
        list.by = "gtest";
        list.origin = "bpf test";
        list.source = "test";
        list.source_sha256 = std::string(64, '0');
        list.created_unix = unix_now();
        list.expires_unix = expires_unix;
        for (const std::string& p : prefixes) {
            const Cidr c = parse_cidr(p).cidr;
            (c.family == Family::V4 ? list.v4 : list.v6).push_back(c);
        }
        std::sort(list.v4.begin(), list.v4.end());
        std::sort(list.v6.begin(), list.v6.end());
        return lists_->import(list);
    }
    int verdict(const std::string& source) { return run_raw(is_v6(source) ? syn6(source) : syn4(source)); }

    std::filesystem::path store_;
    std::optional<FenceLists> lists_;
};

TEST_F(Lists, TheProgramFindsWhatTheCompilerFound) {
    Draw draw(7);
    std::vector<TestList> lists = random_lists(draw, 3, 200);
    const char* names[] = {"a-allow", "b-block", "c-block"};
    for (size_t i = 0; i < lists.size(); ++i) {
        std::vector<std::string> texts;
        for (const auto* v : {&lists[i].v4, &lists[i].v6}) {
            for (const Cidr& c : *v) texts.push_back(format_cidr(c));
        }
        import(names[i], i == 0 ? Action::Allow : Action::Block, texts);
    }
    // Ranks as FenceLists gives them: allow lists first, then by name;
    // indexes as it handed them out, in import order.
    for (size_t i = 0; i < lists.size(); ++i) lists[i].rank = static_cast<uint32_t>(i);
    const std::vector<ListStatus> status = lists_->lists();
    ASSERT_EQ(status.size(), 3u);
    for (size_t i = 0; i < lists.size(); ++i) lists[i].index = status[i].index;

    int drops = 0, passes = 0;
    for (int n = 0; n < 3000; ++n) {
        const Cidr a = draw.address(n % 2 ? Family::V4 : Family::V6);
        const uint32_t hit = brute_force(lists, a);
        const bool blocked = hit != 0 && FENCE_LIST_HIT_LIST(hit) != status[0].index;
        const std::string text = format_address(a.family, a.addr);
        ASSERT_EQ(verdict(text), blocked ? kDrop : kPass) << text << " hit " << hit;
        (blocked ? drops : passes)++;
    }
    EXPECT_GT(drops, 300);  // the draw covers both outcomes
    EXPECT_GT(passes, 300);
    uint64_t dropped = 0;
    for (const ListStatus& s : lists_->lists()) dropped += s.counters.dropped;
    EXPECT_EQ(dropped, static_cast<uint64_t>(drops));
}

TEST_F(Lists, LongestPrefixDecidesBetweenRulesAndLists) {
    import("drop", Action::Block, {"203.0.113.0/24", "2001:db8:bad::/48"});
    add("203.0.113.20/32", Action::Allow);     // a rule inside a listed prefix
    add("198.51.100.0/24", Action::Block);     // a listed allow inside a rule
    import("friends", Action::Allow, {"198.51.100.7/32", "2001:db8:bad::7/128"});
    add("2001:db8:bad::7/128", Action::Block);  // the same prefix as a listed one: the rule wins

    EXPECT_EQ(verdict("203.0.113.5"), kDrop);
    EXPECT_EQ(verdict("203.0.113.20"), kPass);
    EXPECT_EQ(verdict("198.51.100.5"), kDrop);
    EXPECT_EQ(verdict("198.51.100.7"), kPass);
    EXPECT_EQ(verdict("2001:db8:bad::5"), kDrop);
    EXPECT_EQ(verdict("2001:db8:bad::7"), kDrop);
    EXPECT_EQ(verdict("2001:db8:beef::1"), kPass);
}

TEST_F(Lists, EventsAndSourcesCarryTheListEntryThatDecided) {
    import("drop", Action::Block, {"203.0.112.0/20", "2001:db8:bad::/48"});
    const std::map<uint32_t, std::string> names = lists_->names_by_rule_id();
    ASSERT_EQ(names.size(), 1u);
    const uint32_t list_rule_id = names.begin()->first;
    EXPECT_EQ(names.begin()->second, "drop");

    EventStream events(pin_dir());
    // Sources get their entry from the second SYN on.
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(verdict("203.0.113.10"), kDrop);
        ASSERT_EQ(verdict("2001:db8:bad::1"), kDrop);
    }
    const std::vector<fence_event> seen = events.drain();
    ASSERT_EQ(seen.size(), 2u);
    for (const fence_event& e : seen) {
        EXPECT_EQ(e.rule_id, list_rule_id);
        EXPECT_EQ(e.action, FENCE_ACTION_BLOCK);
        EXPECT_EQ(e.prefixlen, e.family == 4 ? 20 : 48);
    }
    const SourceSnapshot sources = SourceTable(pin_dir()).snapshot();
    ASSERT_EQ(sources.entries.size(), 2u);
    for (const SourceEntry& s : sources.entries) {
        EXPECT_EQ(s.stats.last_rule_id, list_rule_id);
        EXPECT_EQ(s.stats.last_prefixlen, s.key.family == 4 ? 20 : 48);
    }
}

TEST_F(Lists, AReimportReplacesTheListWholeAndUnimportRemovesIt) {
    ImportSummary first = import("drop", Action::Block, {"203.0.113.0/24", "198.51.100.0/25"});
    EXPECT_TRUE(first.created);
    EXPECT_EQ(first.added, 2u);
    EXPECT_EQ(verdict("198.51.100.5"), kDrop);

    ImportSummary second = import("drop", Action::Block, {"203.0.113.0/24", "2001:db8::/32"});
    EXPECT_FALSE(second.created);
    EXPECT_EQ(second.added, 1u);
    EXPECT_EQ(second.removed, 1u);
    EXPECT_EQ(second.unchanged, 1u);
    EXPECT_EQ(verdict("198.51.100.5"), kPass);
    EXPECT_EQ(verdict("203.0.113.5"), kDrop);
    EXPECT_EQ(verdict("2001:db8::5"), kDrop);
    // The counters stay with the list across a re-import of the same action.
    ASSERT_EQ(lists_->lists().size(), 1u);
    EXPECT_EQ(lists_->lists()[0].counters.dropped, 3u);

    EXPECT_TRUE(lists_->unimport("drop"));
    EXPECT_FALSE(lists_->unimport("drop"));
    EXPECT_EQ(verdict("203.0.113.5"), kPass);
    EXPECT_TRUE(lists_->lists().empty());
    EXPECT_FALSE(std::filesystem::exists(store_ / "drop.list"));
}

TEST_F(Lists, AnExpiredListStepsAsideInTheKernelAndIsReaped) {
    import("soon", Action::Block, {"203.0.113.0/24"}, unix_now() + 1);
    EXPECT_EQ(verdict("203.0.113.5"), kDrop);
    // The kernel's deadline: no process has to run for the list to end.
    bool passed = false;
    for (int i = 0; i < 40 && !passed; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        passed = verdict("203.0.113.5") == kPass;
    }
    EXPECT_TRUE(passed);
    EXPECT_EQ(lists_->reap_expired(unix_now()), std::vector<std::string>{"soon"});
    EXPECT_TRUE(lists_->lists().empty());
}

}  // namespace
