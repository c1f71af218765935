#include "reference_classifier.h"

#include <algorithm>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <arpa/inet.h>

namespace smtpfence::model {

namespace {

constexpr size_t kEthernetHeader = 14;
constexpr uint16_t kVlan8021Q = 0x8100, kVlan8021AD = 0x88a8, kIpv4 = 0x0800, kIpv6 = 0x86dd;
constexpr size_t kMaxVlanTags = 2;
constexpr size_t kMaxIpv6ExtensionHeaders = 6;
constexpr uint8_t kTcp = 6;
constexpr uint8_t kHopByHop = 0, kRouting = 43, kFragment = 44, kAh = 51, kDestOpts = 60, kMobility = 135;
constexpr uint8_t kFlagSyn = 0x02, kFlagAck = 0x10;

uint16_t be16(const Bytes& f, size_t at) {
    return static_cast<uint16_t>(f[at] << 8 | f[at + 1]);
}

uint32_t be32(const Bytes& f, size_t at) {
    return static_cast<uint32_t>(be16(f, at)) << 16 | be16(f, at + 2);
}

bool is_extension_header(uint8_t next) {
    return next == kHopByHop || next == kRouting || next == kFragment || next == kDestOpts || next == kAh ||
           next == kMobility;
}

// The TCP header at `at`. `first_fragment`: the IP packet is the first
// fragment of a larger one, whose header may be cut by the fragmentation.
ParsedFrame parse_tcp(const Bytes& f, size_t at, bool first_fragment, const std::set<uint16_t>& ports,
                      ParsedFrame p) {
    // A TCP header is 20 bytes and its data offset counts at least 5 words.
    if (f.size() < at + 20 || (f[at + 12] >> 4) < 5) {
        p.kind = first_fragment ? FrameKind::Portless : FrameKind::Malformed;
        return p;
    }
    p.sport = be16(f, at);
    p.dport = be16(f, at + 2);
    if (!ports.contains(p.dport)) return p;  // Other
    p.seq = be32(f, at + 4);
    p.syn = f[at + 13] & kFlagSyn;
    p.ack = f[at + 13] & kFlagAck;
    p.kind = FrameKind::Smtp;
    return p;
}

ParsedFrame parse_ipv4(const Bytes& f, size_t at, const std::set<uint16_t>& ports) {
    ParsedFrame p;
    if (f.size() < at + 20) return {.kind = FrameKind::Malformed};
    const unsigned version = f[at] >> 4, ihl = f[at] & 0x0f;
    // IHL counts 4-byte words: the header, options included, must be in the frame.
    if (version != 4 || ihl < 5 || f.size() < at + ihl * 4) return {.kind = FrameKind::Malformed};
    if (f[at + 9] != kTcp) return p;
    p.family = 4;
    std::copy_n(f.begin() + static_cast<long>(at) + 12, 4, p.source.begin());
    const uint16_t frag = be16(f, at + 6);
    if (frag & 0x1fff) {  // a fragment other than the first
        p.kind = FrameKind::Portless;
        return p;
    }
    return parse_tcp(f, at + ihl * 4, (frag & 0x2000) != 0, ports, p);
}

ParsedFrame parse_ipv6(const Bytes& f, size_t at, const std::set<uint16_t>& ports) {
    ParsedFrame p;
    if (f.size() < at + 40 || (f[at] >> 4) != 6) return {.kind = FrameKind::Malformed};
    p.family = 6;
    std::copy_n(f.begin() + static_cast<long>(at) + 8, 16, p.source.begin());
    uint8_t next = f[at + 6];
    size_t cursor = at + 40;
    bool fragmented = false;
    for (size_t i = 0; i < kMaxIpv6ExtensionHeaders && is_extension_header(next); ++i) {
        if (next == kFragment) {
            if (f.size() < cursor + 8) return {.kind = FrameKind::Malformed};
            const uint8_t inner = f[cursor];
            if (be16(f, cursor + 2) & 0xfff8) {
                // A later fragment: its port cannot be seen when it carries TCP,
                // or another extension header behind which TCP may follow.
                p.kind = inner == kTcp || is_extension_header(inner) ? FrameKind::Portless : FrameKind::Other;
                return p;
            }
            fragmented = true;
            next = inner;
            cursor += 8;
            continue;
        }
        // RFC 8200: length in 8-byte units not counting the first 8; AH (RFC
        // 4302) in 4-byte units not counting the first 8. The whole header
        // must be in the frame.
        if (f.size() < cursor + 2) return {.kind = FrameKind::Malformed};
        const size_t len = next == kAh ? (f[cursor + 1] + 2u) * 4 : (f[cursor + 1] + 1u) * 8;
        if (f.size() < cursor + len) return {.kind = FrameKind::Malformed};
        next = f[cursor];
        cursor += len;
    }
    if (is_extension_header(next)) {  // a chain longer than walked: a SYN could hide behind it
        p.kind = FrameKind::Portless;
        return p;
    }
    if (next != kTcp) return p;
    return parse_tcp(f, cursor, fragmented, ports, p);
}

std::string address_text(int family, const Address& a) {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(family == 4 ? AF_INET : AF_INET6, a.data(), text, sizeof text);
    return text;
}

}  // namespace

bool same_prefix(const Address& a, const Address& b, unsigned len) {
    return masked(a, len) == masked(b, len);
}

Address masked(const Address& a, unsigned len) {
    Address out{};
    for (unsigned bit = 0; bit < len && bit < 128; ++bit) {
        out[bit / 8] |= a[bit / 8] & (0x80 >> (bit % 8));
    }
    return out;
}

ParsedFrame parse_frame(const Bytes& f, const std::set<uint16_t>& ports) {
    if (f.size() < kEthernetHeader) return {.kind = FrameKind::Malformed};
    uint16_t type = be16(f, 12);
    size_t cursor = kEthernetHeader;
    for (size_t i = 0; i < kMaxVlanTags && (type == kVlan8021Q || type == kVlan8021AD); ++i) {
        if (f.size() < cursor + 4) return {.kind = FrameKind::Malformed};
        type = be16(f, cursor + 2);
        cursor += 4;
    }
    if (type == kIpv4) return parse_ipv4(f, cursor, ports);
    if (type == kIpv6) return parse_ipv6(f, cursor, ports);
    return {};
}

ReferenceClassifier::ReferenceClassifier(std::vector<ModelRule> rules, std::set<uint16_t> ports)
    : rules_(std::move(rules)), ports_(std::move(ports)), counts_(rules_.size()) {
    for (size_t i = 0; i < rules_.size(); ++i) {
        for (size_t j = 0; j < i; ++j) {
            if (rules_[i].family == rules_[j].family && rules_[i].prefixlen == rules_[j].prefixlen &&
                rules_[i].addr == rules_[j].addr) {
                throw std::invalid_argument("two rules for one prefix: " + to_string(rules_[i]));
            }
        }
    }
}

void ReferenceClassifier::set_open_connections(size_t rule, const Address& source, uint32_t open) {
    open_[{rule, key_of(rule, source)}] = open;
}

Address ReferenceClassifier::key_of(size_t rule, const Address& source) const {
    return masked(source, rules_[rule].key_prefixlen);
}

std::vector<size_t> ReferenceClassifier::chain(int family, const Address& source) const {
    std::vector<size_t> covering;
    for (size_t i = 0; i < rules_.size(); ++i) {
        if (rules_[i].family == family && same_prefix(rules_[i].addr, source, rules_[i].prefixlen)) {
            covering.push_back(i);
        }
    }
    std::sort(covering.begin(), covering.end(),
              [&](size_t a, size_t b) { return rules_[a].prefixlen > rules_[b].prefixlen; });
    if (covering.size() > kMaxRuleLayers) covering.resize(kMaxRuleLayers);
    return covering;
}

// What one rule does to a judged packet: block drops SYNs and port-less
// fragments; allow passes; a limit meters connections (a fragment is none),
// --max-conns first: a SYN refused for the key's open connections takes no
// token of its rate.
ReferenceClassifier::Effect ReferenceClassifier::effect(size_t rule, const ParsedFrame& p) {
    const ModelRule& r = rules_[rule];
    if (r.action == RuleAction::Block) return Effect::Blocked;
    if (r.action == RuleAction::Allow || p.kind != FrameKind::Smtp) return Effect::Pass;
    const std::pair<size_t, Address> key{rule, key_of(rule, p.source)};
    if (r.max_conns != 0) {
        auto open = open_.find(key);
        if (open != open_.end() && open->second >= r.max_conns) return Effect::Conns;
    }
    if (r.burst != 0) {
        uint32_t& admitted = admitted_[key];
        if (admitted >= r.burst) return Effect::Rate;
        ++admitted;
    }
    return Effect::Pass;
}

void ReferenceClassifier::count(size_t rule, Effect effect, bool dry_run, bool new_attempt) {
    RuleCounts& c = counts_[rule];
    ++c.matched;
    if (new_attempt) ++c.attempts;
    if (effect == Effect::Pass) return;
    if (dry_run) {
        ++c.would_drop;
        if (new_attempt) ++c.would_drop_attempts;
        return;
    }
    ++c.dropped;
    if (new_attempt) ++c.dropped_attempts;
    if (effect == Effect::Rate) ++c.rate_dropped;
    if (effect == Effect::Conns) ++c.conns_dropped;
}

Verdict ReferenceClassifier::classify(const Bytes& frame) {
    if (frame.size() < kEthernetHeader) return Verdict::NotRun;
    ++global_.seen;
    const ParsedFrame p = parse_frame(frame, ports_);
    bool new_attempt = false;
    switch (p.kind) {
    case FrameKind::Other: ++global_.passed; return Verdict::Pass;
    case FrameKind::Malformed:
        ++global_.malformed;
        ++global_.passed;
        return Verdict::Pass;
    case FrameKind::Smtp:
        ++global_.smtp;
        if (!p.syn || p.ack) {  // an established session's segment: no lookup
            ++global_.passed;
            return Verdict::Pass;
        }
        ++global_.smtp_syn;
        new_attempt = flows_.insert({p.family, p.source, p.sport, p.dport, p.seq}).second;
        if (new_attempt) ++global_.smtp_attempts;
        break;
    case FrameKind::Portless: ++global_.fragments; break;
    }

    // The longest live rule decides; expired rules and dry runs step aside,
    // and the longest dry run it looked past counts what it would have done.
    std::optional<size_t> dry_run, live;
    Effect decided = Effect::Pass;
    for (size_t rule : chain(p.family, p.source)) {
        if (rules_[rule].expired) continue;
        if (rules_[rule].dry_run) {
            if (!dry_run) dry_run = rule;
            continue;
        }
        live = rule;
        decided = effect(rule, p);
        count(rule, decided, false, new_attempt);
        break;
    }
    // `top`'s verdict and the rule that decided: a dry run that would drop
    // what the live rule passes is the one that decided.
    static constexpr SourceVerdict kSourceVerdicts[] = {SourceVerdict::Passed, SourceVerdict::Blocked,
                                                        SourceVerdict::RateDropped, SourceVerdict::ConnsDropped};
    SourceVerdict verdict = kSourceVerdicts[static_cast<int>(decided)];
    int decider = live ? static_cast<int>(*live) : -1;
    if (dry_run) {
        const Effect would = effect(*dry_run, p);
        count(*dry_run, would, true, new_attempt);
        if (would != Effect::Pass) {
            ++global_.would_drop;
            if (decided == Effect::Pass) {
                verdict = SourceVerdict::WouldDrop;
                decider = static_cast<int>(*dry_run);
            }
        }
    }
    if (p.kind == FrameKind::Smtp) account_source(p, verdict, decider, new_attempt);
    if (decided == Effect::Pass) {
        ++global_.passed;
        return Verdict::Pass;
    }
    ++global_.dropped;
    if (new_attempt) ++global_.dropped_attempts;
    return Verdict::Drop;
}

void ReferenceClassifier::account_source(const ParsedFrame& p, SourceVerdict verdict, int decider,
                                         bool new_attempt) {
    SourceCounts& c = sources_[{p.family, p.source, p.dport}];
    const bool dropped = verdict != SourceVerdict::Passed && verdict != SourceVerdict::WouldDrop;
    ++c.syn_packets;
    if (new_attempt) {
        ++c.attempts;
        if (dropped) ++c.dropped_attempts;
    }
    switch (verdict) {
    case SourceVerdict::Passed: ++c.passed; break;
    case SourceVerdict::Blocked: ++c.blocked; break;
    case SourceVerdict::WouldDrop: ++c.would_drop; break;
    case SourceVerdict::RateDropped:
    case SourceVerdict::ConnsDropped: ++c.limited; break;
    }
    c.last_verdict = verdict;
    c.last_rule = decider;
}

std::string to_string(const RuleCounts& c) {
    std::ostringstream os;
    os << "{matched " << c.matched << ", dropped " << c.dropped << ", rate_dropped " << c.rate_dropped
       << ", conns_dropped " << c.conns_dropped << ", would_drop " << c.would_drop << ", attempts " << c.attempts
       << ", dropped_attempts " << c.dropped_attempts << ", would_drop_attempts " << c.would_drop_attempts << "}";
    return os.str();
}

std::string to_string(const SourceCounts& c) {
    static const char* const verdicts[] = {"passed", "blocked", "rate_dropped", "conns_dropped", "would_drop"};
    std::ostringstream os;
    os << "{syn_packets " << c.syn_packets << ", attempts " << c.attempts << ", dropped_attempts "
       << c.dropped_attempts << ", passed " << c.passed << ", blocked " << c.blocked << ", limited " << c.limited
       << ", would_drop " << c.would_drop << ", last " << verdicts[static_cast<int>(c.last_verdict)] << " by ";
    if (c.last_rule < 0) {
        os << "no rule";
    } else {
        os << "[" << c.last_rule << "]";
    }
    os << "}";
    return os.str();
}

std::string to_string(const GlobalCounts& c) {
    std::ostringstream os;
    os << "{seen " << c.seen << ", passed " << c.passed << ", dropped " << c.dropped << ", smtp " << c.smtp
       << ", smtp_syn " << c.smtp_syn << ", smtp_attempts " << c.smtp_attempts << ", dropped_attempts "
       << c.dropped_attempts << ", fragments " << c.fragments << ", malformed " << c.malformed << ", would_drop "
       << c.would_drop << "}";
    return os.str();
}

std::string to_string(const ModelRule& r) {
    static const char* const names[] = {"allow", "block", "limit"};
    std::ostringstream os;
    os << names[static_cast<int>(r.action)] << " " << address_text(r.family, r.addr) << "/" << r.prefixlen;
    if (r.action == RuleAction::Limit) {
        if (r.burst != 0) os << " --rate 1/h --burst " << r.burst;
        if (r.max_conns != 0) os << " --max-conns " << r.max_conns;
        os << " --per /" << r.key_prefixlen;
    }
    if (r.dry_run) os << " --dry-run";
    if (r.expired) os << " (expired)";
    return os.str();
}

}  // namespace smtpfence::model
