#include "fence/rule_store.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <unistd.h>

#include "base/errors.h"
#include "bpf/pin_dir.h"
#include "fence/layout.h"
#include "fence/netns.h"
#include "fence/pacing.h"
#include "text/durations.h"
#include "text/rerun.h"

namespace smtpfence {

namespace {

// An LPM trie key of either family (rule_key_v4 or rule_key_v6): prefixlen
// first, then the address, as the kernel compares it.
struct TrieKey {
    std::array<uint8_t, sizeof(rule_key_v6)> bytes{};
    size_t size = 0;
    const void* data() const { return bytes.data(); }
};

size_t trie_key_size(Family family) {
    return family == Family::V4 ? sizeof(rule_key_v4) : sizeof(rule_key_v6);
}

TrieKey trie_key(const Cidr& cidr) {
    TrieKey key;
    key.size = trie_key_size(cidr.family);
    uint32_t prefixlen = cidr.prefixlen;
    std::memcpy(key.bytes.data(), &prefixlen, sizeof prefixlen);
    std::memcpy(key.bytes.data() + sizeof prefixlen, cidr.addr.data(), key.size - sizeof prefixlen);
    return key;
}

Cidr cidr_from_key(Family family, const std::vector<uint8_t>& raw) {
    Cidr cidr;
    cidr.family = family;
    uint32_t prefixlen;
    std::memcpy(&prefixlen, raw.data(), sizeof prefixlen);
    cidr.prefixlen = static_cast<uint8_t>(prefixlen);
    std::copy(raw.begin() + sizeof prefixlen, raw.end(), cidr.addr.begin());
    return cidr;
}

std::string fixed_string(const char* text, size_t capacity) {
    return std::string(text, strnlen(text, capacity));
}

void copy_fixed(char* dest, size_t capacity, const std::string& text) {
    std::memset(dest, 0, capacity);
    std::memcpy(dest, text.data(), std::min(text.size(), capacity - 1));
}

LimitSpec limit_of(const rule_value& value) {
    LimitSpec limit;
    if (value.action != FENCE_ACTION_LIMIT) return limit;
    limit.interval_ns = value.interval_ns;
    limit.burst = value.interval_ns ? static_cast<uint32_t>(value.tolerance_ns / value.interval_ns + 1) : 0;
    limit.max_conns = value.max_conns;
    limit.key_prefixlen = value.key_prefixlen;
    return limit;
}

// The data path's view of a rule (everything but its slot and id).
rule_value value_of(const RuleSpec& spec) {
    rule_value value{};
    value.action = static_cast<uint8_t>(spec.action);
    value.prefixlen = spec.cidr.prefixlen;
    value.flags = spec.dry_run ? FENCE_RULE_DRY_RUN : 0;
    value.expires_ns = spec.expires_unix ? boottime_deadline_ns(spec.expires_unix) : 0;
    if (spec.action == Action::Limit) {
        const LimitSpec& limit = spec.limit;
        value.key_prefixlen = limit.key_prefixlen;
        value.max_conns = limit.max_conns;
        value.interval_ns = limit.interval_ns;
        value.tolerance_ns = limit.interval_ns * (limit.burst ? limit.burst - 1 : 0);
    }
    return value;
}

void append_classes(std::vector<PaceClass>& classes, const rule_pace& pace) {
    for (uint32_t i = 0; i < std::max<uint32_t>(pace.classes, 1); ++i) {
        classes.push_back({(pace.classid & 0xffff) + i, pace.interval_ns});
    }
}

}  // namespace

Fence Fence::open(const std::string& pin_dir) {
    std::string config_pin = pin_path(pin_dir, FENCE_MAP_CONFIG);
    if (::access(config_pin.c_str(), F_OK) != 0) {
        if (errno != ENOENT && errno != ENOTDIR) throw RuntimeError(describe_errno("open " + config_pin, errno));
        throw RuntimeError("no smtpfence instance in " + pin_dir +
                           ": set one up with `smtpfence attach IFACE` (or pass the --pin-dir it was attached with)");
    }
    Fence fence;
    fence.pin_dir_ = pin_dir;
    auto map = [&](const char* name) { return MapRef(open_pinned(pin_path(pin_dir, name)), name); };
    // The config map first: it says whether the other maps are ours to read.
    fence.config_ = map(FENCE_MAP_CONFIG);
    check_config_layout(pin_dir, fence.config_.fd());
    fence.in_guarded_netns_ = enter_guarded_netns(pin_dir);
    fence.rules_v4_ = map(FENCE_MAP_RULES_V4);
    fence.rules_v6_ = map(FENCE_MAP_RULES_V6);
    fence.rule_counters_ = map(FENCE_MAP_RULE_COUNTERS);
    fence.rule_info_ = map(FENCE_MAP_RULE_INFO);
    fence.stats_ = map(FENCE_MAP_STATS);
    fence.limit_state_ = map(FENCE_MAP_LIMIT_STATE);
    fence.conn_counts_ = map(FENCE_MAP_CONN_COUNTS);
    // Made by the first `attach` of a build with message pacing.
    for (auto [target, name] :
         {std::pair{&fence.rule_pace_, FENCE_MAP_RULE_PACE}, std::pair{&fence.pace_keys_, FENCE_MAP_PACE_KEYS}}) {
        if (std::optional<UniqueFd> fd = try_open_pinned(pin_path(pin_dir, name))) {
            *target = MapRef(std::move(*fd), name);
        }
    }
    return fence;
}

fence_config Fence::read_config() const {
    uint32_t zero = 0;
    return config_.find<fence_config>(zero).value_or(fence_config{});
}

void Fence::write_config(const fence_config& cfg) const {
    uint32_t zero = 0;
    config_.update(&zero, &cfg);
}

std::optional<rule_value> Fence::lookup_value(const Cidr& cidr) const {
    // The trie answers with the longest rule covering the key's prefix; that is
    // the rule with exactly this prefix whenever one exists.
    rule_value value{};
    if (!trie(cidr.family).lookup(trie_key(cidr).data(), &value) || value.prefixlen != cidr.prefixlen) {
        return std::nullopt;
    }
    return value;
}

std::vector<std::pair<Cidr, rule_value>> Fence::trie_entries() const {
    std::vector<std::pair<Cidr, rule_value>> out;
    for (Family family : {Family::V4, Family::V6}) {
        for (const auto& raw : trie(family).keys(trie_key_size(family))) {
            rule_value value{};
            if (trie(family).lookup(raw.data(), &value)) out.emplace_back(cidr_from_key(family, raw), value);
        }
    }
    return out;
}

std::optional<Rule> Fence::find_rule(const Cidr& cidr) const {
    auto value = lookup_value(cidr);
    if (!value) return std::nullopt;
    return rule_of(cidr, *value);
}

Rule Fence::rule_of(const Cidr& cidr, const rule_value& value) const {
    Rule rule;
    rule.cidr = cidr;
    rule.action = static_cast<Action>(value.action);
    rule.slot = value.slot;
    rule.limit = limit_of(value);
    rule.rule_id = value.rule_id;
    rule.dry_run = (value.flags & FENCE_RULE_DRY_RUN) != 0;
    rule.expires_boot_ns = value.expires_ns;
    rule.counters = slot_counters(value.slot);
    if ((value.flags & FENCE_RULE_PACED) && rule_pace_.is_open() && rule_pace_.lookup(&value.slot, &rule.pace) &&
        rule.pace.rule_id == value.rule_id) {
        rule.limit.message_interval_ns = rule.pace.interval_ns;
    } else {
        rule.pace = {};
    }
    if (auto info = rule_info_.find<rule_info>(value.slot)) {
        rule.created_unix = info->created_unix;
        rule.expires_unix = info->expires_unix;
        rule.created_by = fixed_string(info->created_by, sizeof info->created_by);
        rule.origin = fixed_string(info->origin, sizeof info->origin);
        rule.reason = fixed_string(info->reason, sizeof info->reason);
    }
    return rule;
}

uint32_t Fence::allocate_slot() {
    if (used_slots_.empty()) {
        used_slots_.assign(rule_counters_.max_entries(), false);
        for (const auto& [cidr, value] : trie_entries()) {
            if (value.slot < used_slots_.size()) used_slots_[value.slot] = true;
        }
    }
    auto free_slot = std::find(used_slots_.begin() + next_free_hint_, used_slots_.end(), false);
    if (free_slot == used_slots_.end()) free_slot = std::find(used_slots_.begin(), used_slots_.end(), false);
    if (free_slot == used_slots_.end()) {
        throw RuntimeError("all " + std::to_string(used_slots_.size()) +
                           " rule slots are in use: remove rules, or recreate the maps with a larger "
                           "`attach --max-rules`");
    }
    *free_slot = true;
    next_free_hint_ = static_cast<size_t>(free_slot - used_slots_.begin());
    return static_cast<uint32_t>(next_free_hint_);
}

rule_counters Fence::slot_counters(uint32_t slot) const {
    return sum_per_cpu<rule_counters>(rule_counters_, slot);
}

void Fence::reset_slot_counters(uint32_t slot) const {
    std::vector<rule_counters> zeros(possible_cpus());
    rule_counters_.update(&slot, zeros.data());
}

rule_info Fence::info_for(const RuleSpec& spec, uint32_t slot, bool same_rule) const {
    rule_info info{};
    bool keep_provenance = false;
    if (same_rule && !spec.exact) {
        if (auto old = rule_info_.find<rule_info>(slot); old && old->created_unix != 0) {
            info = *old;
            keep_provenance = true;
        }
    }
    if (!keep_provenance) {
        info.created_unix = spec.exact ? spec.created_unix : static_cast<uint64_t>(std::time(nullptr));
        copy_fixed(info.created_by, sizeof info.created_by, spec.created_by);
        copy_fixed(info.origin, sizeof info.origin, spec.origin);
    }
    if (spec.exact || !spec.reason.empty() || !keep_provenance) {
        copy_fixed(info.reason, sizeof info.reason, spec.reason);
    }
    info.expires_unix = spec.expires_unix;
    return info;
}

rule_pace Fence::pace_for(const RuleSpec& spec, const rule_value& value,
                          const std::optional<rule_value>& existing) const {
    // One class when the rule is its only key, else a block of them that keys
    // take round robin. The pace keeps its classes and counters while the
    // rule stays a paced limit with as many classes (its keys' clocks go with
    // the rule id, like the limiter's).
    const uint32_t classes = value.key_prefixlen == spec.cidr.prefixlen ? 1 : FENCE_PACE_KEY_CLASSES;
    rule_pace pace{};
    bool was_paced = existing && existing->action == FENCE_ACTION_LIMIT && (existing->flags & FENCE_RULE_PACED) &&
                     rule_pace_.lookup(&value.slot, &pace) && pace.rule_id == existing->rule_id && pace.classid != 0 &&
                     pace.classes == classes;
    if (!was_paced) {
        pace = rule_pace{};
        pace.classid = pace_classid(allocate_pace_classes(classes));
        pace.classes = classes;
    }
    pace.interval_ns = spec.limit.message_interval_ns;
    pace.rule_id = value.rule_id;
    return pace;
}

AddResult Fence::add_rule(const RuleSpec& spec) {
    const Cidr& cidr = spec.cidr;
    const bool paced = spec.action == Action::Limit && spec.limit.message_interval_ns;
    if (paced && (!rule_pace_.is_open() || !pace_keys_.is_open())) {
        throw UsageError("the program in " + pin_dir_ +
                         " predates --messages: run `smtpfence attach IFACE...` "
                         "with this build first (it upgrades in place, rules stay)");
    }
    auto existing = lookup_value(cidr);
    AddResult result{RuleChange::Added, std::nullopt};
    rule_value value = value_of(spec);
    bool keeps_state = false;
    if (existing) {
        value.slot = existing->slot;
        if (existing->action == value.action) {
            result.change = RuleChange::Updated;
            keeps_state = existing->key_prefixlen == value.key_prefixlen;
        } else {
            result = {RuleChange::Replaced, static_cast<Action>(existing->action)};
        }
    } else {
        value.slot = allocate_slot();
    }
    if (keeps_state) {
        value.rule_id = existing->rule_id;
    } else {
        fence_config cfg = read_config();
        value.rule_id = ++cfg.next_rule_id;
        write_config(cfg);
    }

    // A block that becomes a limit (or back) keeps its provenance: the same
    // incident, handled another way.
    const bool same_story = existing && same_incident(static_cast<Action>(existing->action), spec.action);
    rule_info info = info_for(spec, value.slot, same_story);
    rule_info_.update(&value.slot, &info);
    if (result.change != RuleChange::Updated) reset_slot_counters(value.slot);
    if (paced) {
        rule_pace pace = pace_for(spec, value, existing);
        rule_pace_.update(&value.slot, &pace);
        value.flags |= FENCE_RULE_PACED;
        // Its classes exist, and the egress program knows a rule is paced,
        // before the rule does: a reply steered into a class that is not
        // there yet leaves unshaped (HTB's direct queue), and one the
        // program skips is not paced at all. Found as a burst in the
        // block -> pace hand-over, when the blocked relay's SYN
        // retransmissions met that window. A tc failure here leaves the
        // rule unchanged.
        publish_pace_classes(&pace);
    }

    // The trie update is the moment the rule takes effect: everything it
    // points to is in place before it, and replacing a value is atomic.
    trie(cidr.family).update(trie_key(cidr).data(), &value);
    if (existing && !keeps_state && existing->action == FENCE_ACTION_LIMIT) forget_limiter_state(existing->rule_id);
    return result;
}

uint32_t Fence::allocate_pace_classes(uint32_t count) const {
    std::vector<bool> used(0x10000, false);
    used[0] = true;  // minor 0 is the qdisc itself
    for (const auto& [cidr, value] : trie_entries()) {
        rule_pace pace{};
        if ((value.flags & FENCE_RULE_PACED) && rule_pace_.lookup(&value.slot, &pace)) {
            for (uint32_t i = 0; i < std::max<uint32_t>(pace.classes, 1); ++i) {
                if ((pace.classid & 0xffff) + i < used.size()) used[(pace.classid & 0xffff) + i] = true;
            }
        }
    }
    for (uint32_t first = 1; first + count <= used.size(); ++first) {
        if (std::none_of(used.begin() + first, used.begin() + first + count, [](bool u) { return u; })) return first;
    }
    throw RuntimeError(
        "the 65535 pacing classes are in use: remove paced rules (a rule paced --per source or /LEN "
        "takes " +
        std::to_string(FENCE_PACE_KEY_CLASSES) + ")");
}

void Fence::require_guarded_netns(const std::string& what) const {
    if (in_guarded_netns_) return;
    for (const auto& a : attachments()) {
        if (a.ifindex != 0) throw_outside_guarded_netns(what);
    }
}

void Fence::check_pacing_possible() const {
    require_guarded_netns("pace messages");
    for (const auto& a : attachments()) {
        if (a.ifindex == 0) continue;
        RootQdisc root = root_qdisc(a.name);
        if (!root.replaceable()) {
            throw UsageError("--messages needs to install smtpfence's HTB root qdisc on " + a.name +
                             ", whose root qdisc is " + root.kind + " " + root.handle +
                             ", set up by someone else: remove it (`tc qdisc del dev " + a.name +
                             " root`) or pace on another host; nothing was changed");
        }
    }
}

void Fence::sync_pacing() const {
    publish_pace_classes(nullptr);
}

void Fence::publish_pace_classes(const rule_pace* incoming) const {
    require_guarded_netns("set up the pacing classes");
    std::vector<PaceClass> classes;
    for (const auto& rule : rules()) {
        if (rule.limit.message_interval_ns) append_classes(classes, rule.pace);
    }
    // Last, so that its rate wins where it reuses the classes of the rule it
    // replaces.
    if (incoming) append_classes(classes, *incoming);
    fence_config cfg = read_config();
    // Nothing paced now or before: no qdisc of ours can be there to change.
    if (classes.empty() && cfg.paced_rules == 0) return;
    for (const auto& a : attachments()) {
        if (a.ifindex != 0) sync_pace_classes(a.name, classes);
    }
    cfg = read_config();
    cfg.paced_rules = static_cast<uint32_t>(classes.size());
    write_config(cfg);
}

AddResult Fence::add_rule(const Cidr& cidr, Action action, const std::string& reason, const std::string& by,
                          const LimitSpec& limit) {
    RuleSpec spec;
    spec.cidr = cidr;
    spec.action = action;
    spec.limit = limit;
    spec.reason = reason;
    spec.created_by = by;
    return add_rule(spec);
}

std::vector<Rule> Fence::reap_expired() {
    uint64_t now = boottime_now_ns();
    std::vector<Rule> expired;
    for (const auto& [cidr, value] : trie_entries()) {
        if (value.expires_ns != 0 && value.expires_ns <= now) expired.push_back(rule_of(cidr, value));
    }
    for (const auto& rule : expired) remove_rule(rule.cidr);
    std::sort(expired.begin(), expired.end(), [](const Rule& a, const Rule& b) { return a.cidr < b.cidr; });
    return expired;
}

std::vector<const MapRef*> Fence::keyed_state_maps() const {
    std::vector<const MapRef*> maps{&conn_counts_, &limit_state_};
    if (pace_keys_.is_open()) maps.push_back(&pace_keys_);
    return maps;
}

void Fence::forget_limiter_state(uint32_t rule_id) const {
    for (const MapRef* map : keyed_state_maps()) {
        for (const limit_key& key : map->keys_of<limit_key>()) {
            if (key.rule_id == rule_id) map->erase(&key);
        }
    }
}

bool Fence::remove_rule(const Cidr& cidr) {
    auto existing = lookup_value(cidr);
    if (!existing) return false;
    trie(cidr.family).erase(trie_key(cidr).data());
    rule_info empty{};
    rule_info_.update(&existing->slot, &empty);
    if (existing->flags & FENCE_RULE_PACED) {
        rule_pace none{};
        rule_pace_.update(&existing->slot, &none);
    }
    if (existing->slot < used_slots_.size()) used_slots_[existing->slot] = false;
    if (existing->action == FENCE_ACTION_LIMIT) forget_limiter_state(existing->rule_id);
    return true;
}

std::vector<Rule> Fence::rules() const {
    // Keys with state, per rule id: a key counts once, whether it has a
    // GCRA clock, a connection count, a pace clock, or several.
    std::map<uint32_t, std::set<std::vector<uint8_t>>> keys_of_rule;
    for (const MapRef* map : keyed_state_maps()) {
        for (const auto& raw : map->keys(sizeof(limit_key))) {
            limit_key key;
            std::memcpy(&key, raw.data(), sizeof key);
            keys_of_rule[key.rule_id].insert(raw);
        }
    }
    std::vector<Rule> out;
    for (const auto& [cidr, value] : trie_entries()) {
        Rule rule = rule_of(cidr, value);
        if (rule.action == Action::Limit) {
            auto it = keys_of_rule.find(value.rule_id);
            rule.tracked_keys = it == keys_of_rule.end() ? 0 : it->second.size();
        }
        out.push_back(std::move(rule));
    }
    std::sort(out.begin(), out.end(), [](const Rule& a, const Rule& b) { return a.cidr < b.cidr; });
    return out;
}

PortSet Fence::ports() const {
    return decode_port_bitmap(read_config().smtp_ports);
}

void Fence::set_ports(const PortSet& ports) {
    fence_config cfg = read_config();
    encode_port_bitmap(ports, cfg.smtp_ports);
    write_config(cfg);
}

fence_stats Fence::counters() const {
    return sum_per_cpu<fence_stats>(stats_, 0);
}

}  // namespace smtpfence
