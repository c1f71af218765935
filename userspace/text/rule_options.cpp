#include "text/rule_options.h"

#include "base/errors.h"
#include "text/limit_options.h"
#include "text/utf8.h"

namespace smtpfence {

void check_reason(const std::string& reason) {
    check_utf8("--reason", reason);
    if (reason.size() >= FENCE_REASON_LEN) {
        const size_t characters = utf8_length(reason).value_or(reason.size());
        const std::string fit = std::to_string(FENCE_REASON_LEN - 1);
        throw UsageError(characters == reason.size()
                             ? "--reason is " + std::to_string(characters) + " characters; at most " + fit +
                                   " fit: say it shorter"
                             : "--reason is " + std::to_string(characters) + " characters, " +
                                   std::to_string(reason.size()) + " bytes in UTF-8; at most " + fit + " bytes fit (" +
                                   fit + " characters of ASCII, fewer of others: ü takes 2 bytes): say it shorter");
    }
    check_stored_reason(reason);
}

void check_stored_reason(const std::string& reason) {
    if (reason.size() >= FENCE_REASON_LEN) {
        throw UsageError("--reason is " + std::to_string(reason.size()) + " bytes; at most " +
                         std::to_string(FENCE_REASON_LEN - 1) + " fit: say it shorter");
    }
    for (unsigned char c : reason) {
        if (c < 0x20 || c == 0x7f) throw UsageError("--reason must be one line of printable text");
    }
}

LimitSpec limit_spec_of(const LimitTexts& texts, const Cidr& cidr) {
    if (!texts.burst.empty() && texts.rate.empty()) {
        throw UsageError(
            "--burst goes with --rate (e.g. --rate 5/s --burst 10): it is how many connections the "
            "rate lets through at once");
    }
    if (texts.rate.empty() && texts.max_conns.empty() && texts.messages.empty()) {
        throw UsageError(
            "limit needs --rate (e.g. --rate 5/s), --max-conns (e.g. --max-conns 3) and/or "
            "--messages (e.g. --messages 5/s)");
    }
    LimitSpec spec;
    if (!texts.rate.empty()) {
        spec.interval_ns = parse_rate(texts.rate);
        spec.burst = texts.burst.empty() ? default_burst(spec.interval_ns)
                                         : parse_count("--burst", texts.burst, kMaxBurst);
    }
    if (!texts.max_conns.empty()) spec.max_conns = parse_count("--max-conns", texts.max_conns, kMaxConns);
    if (!texts.messages.empty()) spec.message_interval_ns = parse_message_rate(texts.messages);
    spec.key_prefixlen = key_prefixlen_for(parse_key_scope(texts.per.empty() ? "source" : texts.per), cidr);
    return spec;
}

void check_dry_run(const RuleSpec& spec) {
    if (!spec.dry_run) return;
    if (spec.action == Action::Allow) {
        throw UsageError(
            "--dry-run counts what a rule would drop, and an allow drops nothing: add the allow "
            "without --dry-run");
    }
    if (spec.action == Action::Limit && spec.limit.message_interval_ns) {
        throw UsageError(
            "--dry-run cannot go with --messages: pacing holds replies, it drops nothing to count; "
            "watch the rule's `messages paced` in `smtpfence list` instead");
    }
    if (spec.action == Action::Limit && spec.limit.max_conns) {
        throw UsageError(
            "--dry-run cannot go with --max-conns: open connections are counted for live rules only "
            "(the connection counter charges no dry-run rule); try the --rate alone as a dry run");
    }
}

bool needs_force(const Cidr& cidr) {
    return cidr.prefixlen < (cidr.family == Family::V4 ? 8 : 32);
}

void check_breadth(const Cidr& cidr, Action action, bool force) {
    if (action == Action::Allow || force || !needs_force(cidr)) return;
    std::string what = cidr.prefixlen == 0
                           ? std::string("every ") + (cidr.family == Family::V4 ? "IPv4" : "IPv6") + " sender"
                           : "a whole /" + std::to_string(cidr.prefixlen) + " of the " +
                                 (cidr.family == Family::V4 ? "IPv4" : "IPv6") + " Internet";
    throw UsageError(std::string(action_name(action)) + " " + format_cidr(cidr) + " covers " + what +
                     " (anything shorter than " + (cidr.family == Family::V4 ? "/8" : "/32") +
                     " does): if that is what you mean, add --force");
}

std::vector<std::string> coverage_warnings(const Cidr& cidr, Action action, const std::vector<Rule>& rules,
                                           const std::vector<HostAddress>& host) {
    std::vector<std::string> warnings;
    if (action == Action::Allow) return warnings;
    const std::string rule = std::string(action_name(action)) + " " + format_cidr(cidr);
    for (const auto& h : host) {
        if (h.address.family != cidr.family || !cidr.contains(h.address)) continue;
        warnings.push_back(rule + " covers " + format_address(h.address.family, h.address.addr) +
                           ", an address of this host (" + h.interface +
                           "): SMTP connections from it to this host's guarded interfaces are judged by this rule");
    }
    for (const auto& r : rules) {
        if (r.action != Action::Allow || r.cidr == cidr || r.cidr.family != cidr.family || !cidr.contains(r.cidr)) {
            continue;
        }
        warnings.push_back(rule + " covers the allow rule " + format_cidr(r.cidr) +
                           (r.reason.empty() ? "" : " (" + r.reason + ")") +
                           ", which keeps letting its sources in: remove it if they should be fenced too");
    }
    return warnings;
}

}  // namespace smtpfence
