// The rules of one fence as userspace sees them: the pinned maps of one pin
// directory (the LPM tries, each rule's slot in the counter, provenance and
// pace maps, the limiter state) and the operations that change them
// atomically for the data path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bpf/map.h"
#include "fence/attach.h"
#include "smtpfence_abi.h"
#include "text/cidr.h"
#include "text/ports.h"
#include "text/rule.h"

namespace smtpfence {

// What add_rule did, for the user's confirmation line.
enum class RuleChange { Added, Updated, Replaced };

struct AddResult {
    RuleChange change;
    std::optional<Action> previous;  // set for Replaced
};

class Fence {
public:
    // Opens the pinned maps of an instance; throws RuntimeError explaining how
    // to set one up when there is none.
    static Fence open(const std::string& pin_dir);

    const std::string& pin_dir() const { return pin_dir_; }

    // Adds a rule, or changes the one with the same prefix in place (one map
    // update: no moment without a rule). Counters are kept when the action
    // stays, reset when it changes; provenance (who, where, when, and the
    // reason unless a new one is given) is kept when the action stays or
    // changes between block and limit (see same_incident). Limiter state is kept while a limit keeps
    // its key length, and starts fresh otherwise.
    // A rule with a deadline gets it in the kernel (rule_value.expires_ns):
    // it stops applying then even when no smtpfence process runs.
    AddResult add_rule(const RuleSpec& spec);
    // A live rule without deadline, created now (the BPF tests and the benchmark).
    AddResult add_rule(const Cidr& cidr, Action action, const std::string& reason, const std::string& by,
                       const LimitSpec& limit = {});
    // Removes the rule with exactly this prefix; false when there is none.
    bool remove_rule(const Cidr& cidr);
    // Removes the rules whose kernel deadline has passed (they apply no more,
    // but hold their slot) and returns them, for the audit log.
    std::vector<Rule> reap_expired();
    // The rule with exactly this prefix, with its provenance and counters.
    std::optional<Rule> find_rule(const Cidr& cidr) const;
    // Every rule, v4 before v6, ordered by address then prefix length.
    std::vector<Rule> rules() const;
    // Rule slots per family (the maps' capacity).
    uint32_t capacity() const { return rules_v4_.max_entries(); }

    PortSet ports() const;
    void set_ports(const PortSet& ports);

    fence_stats counters() const;
    std::vector<Attachment> attachments() const { return smtpfence::attachments(pin_dir_); }
    uint32_t program_id() const { return pinned_program_id(pin_dir_); }

    // Message pacing: UsageError when a paced rule cannot be set up (the
    // program predates pacing, or an attached interface has a root qdisc
    // that is not the kernel's default or smtpfence's own). Changes nothing.
    void check_pacing_possible() const;
    // Makes every attached interface's HTB classes match the paced rules
    // (installs smtpfence's root qdisc with the first, removes it with the
    // last) and tells the egress program whether any rule is paced.
    void sync_pacing() const;

private:
    // Throws (see throw_outside_guarded_netns) when an attached interface
    // lives in a network namespace this run could not enter.
    void require_guarded_netns(const std::string& what) const;
    Fence() = default;
    const MapRef& trie(Family family) const { return family == Family::V4 ? rules_v4_ : rules_v6_; }
    // sync_pacing, with the classes of `incoming` (a paced rule about to be
    // published) kept or made as well.
    void publish_pace_classes(const rule_pace* incoming) const;
    // Lowest free slot at or after the last one handed out; the used set is
    // read from the tries once per Fence, which runs under the pin-dir lock.
    uint32_t allocate_slot();
    // The first of the lowest `count` consecutive HTB class minors no paced
    // rule uses.
    uint32_t allocate_pace_classes(uint32_t count) const;
    // The pace a paced rule `spec` gets in `value.slot`: its classes are kept
    // while it stays paced with as many; made otherwise.
    rule_pace pace_for(const RuleSpec& spec, const rule_value& value, const std::optional<rule_value>& existing) const;
    rule_info info_for(const RuleSpec& spec, uint32_t slot, bool same_rule) const;
    rule_counters slot_counters(uint32_t slot) const;
    void reset_slot_counters(uint32_t slot) const;
    fence_config read_config() const;
    void write_config(const fence_config& cfg) const;
    // Drops the GCRA clocks, --max-conns counts and pace clocks of a limit
    // rule id that no longer exists: counts would fill their (never evicted)
    // map, and clocks would linger in the LRUs and be read by every `list`
    // and metrics scrape.
    void forget_limiter_state(uint32_t rule_id) const;
    // The maps keyed by limit_key (pace_keys when the maps have it).
    std::vector<const MapRef*> keyed_state_maps() const;
    std::optional<rule_value> lookup_value(const Cidr& cidr) const;
    // Every rule in the tries, as (prefix, value).
    std::vector<std::pair<Cidr, rule_value>> trie_entries() const;
    // Everything but tracked_keys, which needs a walk of the limiter maps.
    Rule rule_of(const Cidr& cidr, const rule_value& value) const;

    std::vector<bool> used_slots_;
    size_t next_free_hint_ = 0;
    std::string pin_dir_;
    bool in_guarded_netns_ = true;  // see enter_guarded_netns
    MapRef rules_v4_, rules_v6_, rule_counters_, rule_info_, config_, stats_, limit_state_, conn_counts_;
    MapRef rule_pace_, pace_keys_;  // absent in maps made by a build before pacing, until `attach`
};

}  // namespace smtpfence
