// A reference classifier: what the README says the XDP program does to a
// frame, written from the README's rules alone (the sections "What the data
// path does", "limit", "Dry run", "Expiry", "Attempts, not packets" and the
// counters of `list` and `status`), in plain C++ and without reading the BPF
// code. tests/bpf/test_model.cpp runs it side by side with the real program;
// where the two disagree, either the program or the README is wrong.
//
// Rates: the model keeps no clock. A limit's rate is given as its burst, for a
// rate of 1/h (the slowest there is): over a run shorter than an hour no token
// comes back, so a key admits exactly `burst` SYNs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace smtpfence::model {

using Bytes = std::vector<uint8_t>;
using Address = std::array<uint8_t, 16>;  // IPv4 in the first 4 bytes, the rest zero

enum class RuleAction { Allow, Block, Limit };

struct ModelRule {
    int family = 4;   // 4 or 6
    Address addr{};   // host bits zero
    unsigned prefixlen = 0;
    RuleAction action = RuleAction::Block;
    bool dry_run = false;
    bool expired = false;  // its deadline has passed
    // Limit terms.
    uint32_t burst = 0;          // --rate 1/h --burst N; 0: no --rate
    uint32_t max_conns = 0;      // 0: no --max-conns
    unsigned key_prefixlen = 0;  // --per: sources sharing this many leading bits share a key
};

// A rule's counters, as `list --json` names them.
struct RuleCounts {
    uint64_t matched = 0, dropped = 0, rate_dropped = 0, conns_dropped = 0, would_drop = 0, attempts = 0,
             dropped_attempts = 0, would_drop_attempts = 0;
    bool operator==(const RuleCounts&) const = default;
};

// The global counters, as `status --json` names them.
struct GlobalCounts {
    uint64_t seen = 0, passed = 0, dropped = 0, smtp = 0, smtp_syn = 0, smtp_attempts = 0, dropped_attempts = 0,
             fragments = 0, malformed = 0, would_drop = 0;
    bool operator==(const GlobalCounts&) const = default;
};

// What a source did to one SMTP port (`top`): per SYN packet, and what
// happened to its last one. Verdicts in the order `top` lists them.
enum class SourceVerdict { Passed, Blocked, RateDropped, ConnsDropped, WouldDrop };

struct SourceCounts {
    uint64_t syn_packets = 0, attempts = 0, dropped_attempts = 0, passed = 0, blocked = 0, limited = 0,
             would_drop = 0;
    SourceVerdict last_verdict = SourceVerdict::Passed;
    int last_rule = -1;  // the rule that decided the last SYN (an index into the rules), -1: none
    bool operator==(const SourceCounts&) const = default;
};

// (family, source, port)
using SourceKey = std::tuple<int, Address, uint16_t>;

std::string to_string(const RuleCounts& c);
std::string to_string(const SourceCounts& c);
std::string to_string(const GlobalCounts& c);
std::string to_string(const ModelRule& r);

// What happens to a frame. NotRun: shorter than an Ethernet header, which the
// kernel does not hand to an XDP program at all.
enum class Verdict { NotRun, Pass, Drop };

// How the README's parse sees a frame.
enum class FrameKind {
    Other,      // not TCP to an SMTP port: pass, no lookup
    Malformed,  // truncated or invalid headers: pass, counted
    Smtp,       // TCP to an SMTP port with a complete header
    Portless,   // TCP whose port cannot be seen: judged by source alone
};

struct ParsedFrame {
    FrameKind kind = FrameKind::Other;
    int family = 0;
    Address source{};
    uint16_t sport = 0, dport = 0;
    uint32_t seq = 0;
    bool syn = false, ack = false;
};

// The parse alone, for `ports` as the SMTP ports.
ParsedFrame parse_frame(const Bytes& frame, const std::set<uint16_t>& ports);

class ReferenceClassifier {
public:
    explicit ReferenceClassifier(std::vector<ModelRule> rules, std::set<uint16_t> ports = {25, 465, 587});

    // `open` SMTP connections are established from `source`'s key under rule
    // `rule` (an index into the rules), as the sock_ops program would count.
    void set_open_connections(size_t rule, const Address& source, uint32_t open);

    Verdict classify(const Bytes& frame);

    const GlobalCounts& global() const { return global_; }
    const RuleCounts& counts(size_t rule) const { return counts_.at(rule); }
    const std::map<SourceKey, SourceCounts>& sources() const { return sources_; }
    const std::vector<ModelRule>& rules() const { return rules_; }

    static constexpr size_t kMaxRuleLayers = 8;  // README: the walk down one source's prefix chain

private:
    enum class Effect { Pass, Blocked, Rate, Conns };

    // The rule indices covering `source`, longest prefix first, at most kMaxRuleLayers.
    std::vector<size_t> chain(int family, const Address& source) const;
    Effect effect(size_t rule, const ParsedFrame& p);
    void count(size_t rule, Effect effect, bool dry_run, bool new_attempt);
    Address key_of(size_t rule, const Address& source) const;

    std::vector<ModelRule> rules_;
    std::set<uint16_t> ports_;
    void account_source(const ParsedFrame& p, SourceVerdict verdict, int decider, bool new_attempt);

    std::vector<RuleCounts> counts_;
    std::map<SourceKey, SourceCounts> sources_;
    GlobalCounts global_;
    std::map<std::pair<size_t, Address>, uint32_t> admitted_;  // per limiter key: SYNs the rate admitted
    std::map<std::pair<size_t, Address>, uint32_t> open_;      // per limiter key: open connections
    // Recent SYN flows: (family, source, source port, destination port, sequence number).
    std::set<std::tuple<int, Address, uint16_t, uint16_t, uint32_t>> flows_;
};

// Whether the first `len` bits of `a` and `b` agree.
bool same_prefix(const Address& a, const Address& b, unsigned len);
Address masked(const Address& a, unsigned len);

}  // namespace smtpfence::model
