// The fence as userspace sees it: the pinned maps of one pin directory, the
// rules in them, and the XDP attachments that enforce them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpf_handles.h"
#include "cidr.h"
#include "ports.h"
#include "smtpfence_abi.h"

struct smtpfence_bpf;  // the bpftool skeleton, private to fence.cpp

namespace smtpfence {

inline constexpr const char* kDefaultPinDir = "/sys/fs/bpf/smtpfence";

enum class Action : uint8_t { Allow = FENCE_ACTION_ALLOW, Block = FENCE_ACTION_BLOCK, Limit = FENCE_ACTION_LIMIT };

const char* action_name(Action action);

// What a `limit` rule meters. Sources whose first `key_prefixlen` bits agree
// share one key (one bucket, one connection count).
struct LimitSpec {
    uint64_t interval_ns = 0;  // one new connection per interval; 0 = no rate
    uint32_t burst = 0;        // connections a key may make at once (with a rate)
    uint32_t max_conns = 0;    // concurrent connections per key; 0 = no cap
    uint8_t key_prefixlen = 0;
    // One message per interval per key (--messages); 0 = not paced.
    uint64_t message_interval_ns = 0;

    bool operator==(const LimitSpec&) const = default;
};

struct Rule {
    Cidr cidr;
    Action action = Action::Block;
    uint32_t slot = 0;
    LimitSpec limit;           // Action::Limit only
    rule_counters counters{};  // summed over CPUs
    uint64_t tracked_keys = 0; // Action::Limit: keys with limiter state now
    rule_pace pace{};          // limit.message_interval_ns != 0: its clock, class and counters
    uint32_t rule_id = 0;      // unique for the life of the maps (events and `top` name it)
    bool dry_run = false;      // counts would-drops, drops nothing
    uint64_t created_unix = 0;
    uint64_t expires_unix = 0; // 0 = never
    uint64_t expires_boot_ns = 0; // the kernel's deadline (CLOCK_BOOTTIME); 0 = never
    std::string created_by;
    std::string origin;        // where the command ran: host, and the ssh client
    std::string reason;
};

// A rule as it is asked for: by a command, or by a line of a state file.
struct RuleSpec {
    Cidr cidr;
    Action action = Action::Block;
    LimitSpec limit;            // Action::Limit only
    bool dry_run = false;       // counts would-drops, drops nothing
    uint64_t expires_unix = 0;  // wall-clock deadline; 0 = never
    std::string reason;
    std::string created_by;
    std::string origin;
    uint64_t created_unix = 0;
    // false (a command): the rule is created now by created_by from origin,
    // and when the prefix already has a rule of the same action its
    // provenance is kept, as is its reason when none is given. true (restore):
    // every field is taken as given.
    bool exact = false;
};

// The spec that re-creates `rule` exactly.
RuleSpec spec_of(const Rule& rule);
// True when `rule` already is what `spec` asks for (so restoring it changes nothing).
bool matches_spec(const Rule& rule, const RuleSpec& spec);

// What add_rule did, for the user's confirmation line.
enum class RuleChange { Added, Updated, Replaced };

struct AddResult {
    RuleChange change;
    std::optional<Action> previous;  // set for Replaced
};

// The whole picture of one instance, for `status`.
enum class XdpMode { Auto, Native, Generic };

struct Attachment {
    std::string name;      // interface name the link was pinned under
    int ifindex = 0;       // 0 when the interface is gone
    std::string mode;      // "native", "generic" or "detached"
    uint32_t program_id = 0;
    uint32_t link_id = 0;
};

class Fence {
public:
    // Opens the pinned maps of an instance; throws RuntimeError explaining how
    // to set one up when there is none.
    static Fence open(const std::string& pin_dir);

    const std::string& pin_dir() const { return pin_dir_; }

    // Adds a rule, or changes the one with the same prefix in place (one map
    // update: no moment without a rule). Counters are kept when the action
    // stays, reset when it changes. Limiter state is kept while a limit keeps
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
    std::vector<Attachment> attachments() const;

    // Message pacing: UsageError when a paced rule cannot be set up (the
    // program predates pacing, or an attached interface has a root qdisc
    // that is not the kernel's default or smtpfence's own). Changes nothing.
    void check_pacing_possible() const;
    // Makes every attached interface's HTB classes match the paced rules
    // (installs smtpfence's root qdisc with the first, removes it with the
    // last) and tells the egress program whether any rule is paced.
    void sync_pacing() const;
    uint32_t program_id() const;

private:
    // sync_pacing, with the classes of `incoming` (a paced rule about to be
    // published) kept or made as well.
    void publish_pace_classes(const rule_pace* incoming) const;
    Fence() = default;
    const MapRef& trie(Family family) const { return family == Family::V4 ? rules_v4_ : rules_v6_; }
    // Lowest free slot at or after the last one handed out; the used set is
    // read from the tries once per Fence, which runs under the pin-dir lock.
    uint32_t allocate_slot();
    // The first of the lowest `count` consecutive HTB class minors no paced
    // rule uses.
    uint32_t allocate_pace_classes(uint32_t count) const;
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
    // Everything but tracked_keys, which needs a walk of the limiter maps.
    Rule rule_of(const Cidr& cidr, const rule_value& value) const;

    std::vector<bool> used_slots_;
    size_t next_free_hint_ = 0;
    std::string pin_dir_;
    MapRef rules_v4_, rules_v6_, rule_counters_, rule_info_, config_, stats_, limit_state_, conn_counts_;
    MapRef rule_pace_, pace_keys_;  // absent in maps made by a build before pacing, until `attach`
};

// The embedded XDP program, loaded against the pinned maps of a pin directory
// (created, sized for `max_rules` per family, when absent) and attached nowhere.
class LoadedProgram {
public:
    LoadedProgram(const std::string& pin_dir, uint32_t max_rules);
    LoadedProgram(LoadedProgram&&) noexcept = default;
    ~LoadedProgram();
    int fd() const;          // the XDP program
    int sockops_fd() const;  // the --max-conns connection counter
    int pace_fd() const;     // the egress program of message pacing

private:
    struct SkeletonDeleter {
        void operator()(::smtpfence_bpf* skel) const;
    };
    std::unique_ptr<::smtpfence_bpf, SkeletonDeleter> skel_;
};

enum class AttachChange {
    New,         // the interface had no smtpfence program
    Swapped,     // it ran an older one, replaced atomically (no packet unfiltered)
    Reattached,  // the mode changed: detached and attached again (a brief gap)
};

struct AttachOutcome {
    std::string name;
    std::string mode;  // "native" or "generic"
    AttachChange change;
};

// Loads the program (see LoadedProgram), swaps it atomically into every
// existing attachment, and attaches it to `interfaces`. `notes` gets lines
// worth telling the user.
std::vector<AttachOutcome> attach(const std::string& pin_dir, const std::vector<std::string>& interfaces,
                                  XdpMode mode, uint32_t max_rules, std::vector<std::string>& notes);

// Detaches from `interfaces`; rules and counters stay pinned. Returns the
// interfaces that were not attached.
std::vector<std::string> detach(const std::string& pin_dir, const std::vector<std::string>& interfaces);

// The user a rule is recorded for: SUDO_USER under sudo, else the real user.
std::string invoking_user();
// Where the command runs: this host's name, and the ssh client it was reached
// from ("mx1 (ssh from 203.0.113.7)"), at most FENCE_ORIGIN_LEN - 1 bytes.
std::string invoking_origin();

// Throws RuntimeError, with the way to migrate, when the pinned maps in
// `pin_dir` were made by a build with another map layout (another
// FENCE_LAYOUT_VERSION, or a map whose key or value size differs from this
// build's). Changes nothing; a pin dir without maps passes.
void check_pinned_layout(const std::string& pin_dir);
// The migration from another layout, step by step, for error messages.
std::string layout_migration_hint(const std::string& pin_dir);

}  // namespace smtpfence
