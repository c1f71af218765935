#include "fence.h"

#include <algorithm>
#include <array>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <linux/if_link.h>
#include <map>
#include <memory>
#include <net/if.h>
#include <pwd.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <set>
#include <tuple>
#include <unistd.h>

#include "durations.h"
#include "pacer.h"
#include "errors.h"
#include "smtpfence_bpf.skel.h"

namespace smtpfence {

namespace fs = std::filesystem;

const char* action_name(Action action) {
    switch (action) {
    case Action::Allow: return "allow";
    case Action::Block: return "block";
    case Action::Limit: return "limit";
    }
    return "?";
}

namespace {

std::string pin_path(const std::string& pin_dir, const std::string& name) {
    return pin_dir + "/" + name;
}

std::string link_pin_path(const std::string& pin_dir, const std::string& ifname) {
    return pin_dir + "/" FENCE_PIN_LINKS_DIR "/" + ifname;
}

rule_key_v4 key_v4(const Cidr& cidr) {
    rule_key_v4 key{};
    key.prefixlen = cidr.prefixlen;
    std::memcpy(key.addr, cidr.addr.data(), sizeof key.addr);
    return key;
}

rule_key_v6 key_v6(const Cidr& cidr) {
    rule_key_v6 key{};
    key.prefixlen = cidr.prefixlen;
    std::memcpy(key.addr, cidr.addr.data(), sizeof key.addr);
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

size_t key_size(Family family) {
    return family == Family::V4 ? sizeof(rule_key_v4) : sizeof(rule_key_v6);
}

std::string fixed_string(const char* text, size_t capacity) {
    return std::string(text, strnlen(text, capacity));
}

// Sums the per-CPU copies of a value made only of __u64 counters, field by
// field (both counter structs of the shared header are).
template <typename T>
T sum_per_cpu(const MapRef& map, uint32_t key) {
    static_assert(sizeof(T) % sizeof(uint64_t) == 0, "a value of u64 counters");
    constexpr size_t kWords = sizeof(T) / sizeof(uint64_t);
    std::vector<T> per_cpu(possible_cpus());
    T sum{};
    if (!map.lookup(&key, per_cpu.data())) return sum;
    std::array<uint64_t, kWords> total{};
    for (const T& value : per_cpu) {
        std::array<uint64_t, kWords> words;
        std::memcpy(words.data(), &value, sizeof value);
        for (size_t i = 0; i < kWords; ++i) total[i] += words[i];
    }
    std::memcpy(&sum, total.data(), sizeof sum);
    return sum;
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

void copy_fixed(char* dest, size_t capacity, const std::string& text) {
    std::memset(dest, 0, capacity);
    std::memcpy(dest, text.data(), std::min(text.size(), capacity - 1));
}

fence_config default_config() {
    fence_config cfg{};
    cfg.magic = FENCE_CONFIG_MAGIC;
    cfg.layout_version = FENCE_LAYOUT_VERSION;
    for (uint16_t port : default_smtp_ports()) cfg.smtp_ports[port / 64] |= uint64_t{1} << (port % 64);
    return cfg;
}

struct LinkInfo {
    uint32_t link_id = 0;
    uint32_t program_id = 0;
    int ifindex = 0;
};

LinkInfo link_info(int link_fd) {
    struct bpf_link_info info {};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(link_fd, &info, &len) != 0) {
        throw RuntimeError(describe_errno("inspect XDP link", errno));
    }
    return {info.id, info.prog_id, static_cast<int>(info.xdp.ifindex)};
}

// "native" or "generic" for the program `program_id` on `ifindex`, "detached" if neither.
std::string xdp_mode_of(int ifindex, uint32_t program_id) {
    LIBBPF_OPTS(bpf_xdp_query_opts, query);
    if (ifindex <= 0 || bpf_xdp_query(ifindex, 0, &query) != 0) return "detached";
    if (query.drv_prog_id == program_id) return "native";
    if (query.skb_prog_id == program_id) return "generic";
    if (query.hw_prog_id == program_id) return "offload";
    return "detached";
}

}  // namespace

std::string invoking_user() {
    if (const char* sudo_user = std::getenv("SUDO_USER"); sudo_user && *sudo_user && getuid() == 0) {
        return sudo_user;
    }
    if (const passwd* pw = getpwuid(getuid())) return pw->pw_name;
    return "uid " + std::to_string(getuid());
}

std::string invoking_origin() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "unknown host");
    std::string origin = host;
    // SSH_CONNECTION is "client-ip client-port server-ip server-port";
    // SSH_CLIENT, its older form, starts the same way.
    for (const char* var : {"SSH_CONNECTION", "SSH_CLIENT"}) {
        const char* value = std::getenv(var);
        if (!value || !*value) continue;
        std::string client(value);
        client = client.substr(0, client.find(' '));
        if (!client.empty()) origin += " (ssh from " + client + ")";
        break;
    }
    if (origin.size() >= FENCE_ORIGIN_LEN) origin.resize(FENCE_ORIGIN_LEN - 1);
    return origin;
}

RuleSpec spec_of(const Rule& rule) {
    RuleSpec spec;
    spec.cidr = rule.cidr;
    spec.action = rule.action;
    spec.limit = rule.action == Action::Limit ? rule.limit : LimitSpec{};
    spec.dry_run = rule.dry_run;
    spec.expires_unix = rule.expires_unix;
    spec.reason = rule.reason;
    spec.created_by = rule.created_by;
    spec.origin = rule.origin;
    spec.created_unix = rule.created_unix;
    spec.exact = true;
    return spec;
}

bool matches_spec(const Rule& rule, const RuleSpec& spec) {
    RuleSpec have = spec_of(rule);
    RuleSpec want = spec;
    want.exact = true;
    if (want.action != Action::Limit) want.limit = {};
    auto fields = [](const RuleSpec& r) {
        return std::tie(r.cidr, r.action, r.limit, r.dry_run, r.expires_unix, r.reason, r.created_by, r.origin,
                        r.created_unix);
    };
    return fields(have) == fields(want);
}

std::string layout_migration_hint(const std::string& pin_dir) {
    return "to migrate, with the smtpfence build that made them: `smtpfence --pin-dir " + pin_dir +
           " save rules.txt` (or note `smtpfence list`) and `smtpfence --pin-dir " + pin_dir +
           " detach IFACE...`; then `rm -r " + pin_dir + "`; then with this build: `smtpfence --pin-dir " + pin_dir +
           " attach IFACE...` and `smtpfence --pin-dir " + pin_dir +
           " restore rules.txt` (SMTP is unfiltered between the detach and the attach)";
}

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
    struct bpf_map_info config_info {};
    __u32 info_len = sizeof(config_info);
    if (bpf_obj_get_info_by_fd(fence.config_.fd(), &config_info, &info_len) != 0) {
        throw RuntimeError(describe_errno("inspect " + config_pin, errno));
    }
    if (config_info.value_size != sizeof(fence_config)) {
        throw RuntimeError("the maps in " + pin_dir + " have another layout (a config value of " +
                           std::to_string(config_info.value_size) + " bytes, this smtpfence reads layout version " +
                           std::to_string(FENCE_LAYOUT_VERSION) + " with " + std::to_string(sizeof(fence_config)) +
                           "): use the smtpfence build that made them, or migrate; " + layout_migration_hint(pin_dir));
    }
    fence_config cfg = fence.read_config();
    if (cfg.magic != FENCE_CONFIG_MAGIC || cfg.layout_version != FENCE_LAYOUT_VERSION) {
        throw RuntimeError("the maps in " + pin_dir + " have layout version " + std::to_string(cfg.layout_version) +
                           ", this smtpfence reads version " + std::to_string(FENCE_LAYOUT_VERSION) +
                           ": use the smtpfence build that made them, or migrate; " + layout_migration_hint(pin_dir));
    }
    fence.rules_v4_ = map(FENCE_MAP_RULES_V4);
    fence.rules_v6_ = map(FENCE_MAP_RULES_V6);
    fence.rule_counters_ = map(FENCE_MAP_RULE_COUNTERS);
    fence.rule_info_ = map(FENCE_MAP_RULE_INFO);
    fence.stats_ = map(FENCE_MAP_STATS);
    fence.limit_state_ = map(FENCE_MAP_LIMIT_STATE);
    fence.conn_counts_ = map(FENCE_MAP_CONN_COUNTS);
    // Made by the first `attach` of a build with message pacing.
    if (int fd = bpf_obj_get(pin_path(pin_dir, FENCE_MAP_RULE_PACE).c_str()); fd >= 0) {
        fence.rule_pace_ = MapRef(UniqueFd(fd), FENCE_MAP_RULE_PACE);
    }
    if (int fd = bpf_obj_get(pin_path(pin_dir, FENCE_MAP_PACE_KEYS).c_str()); fd >= 0) {
        fence.pace_keys_ = MapRef(UniqueFd(fd), FENCE_MAP_PACE_KEYS);
    }
    return fence;
}

fence_config Fence::read_config() const {
    uint32_t zero = 0;
    fence_config cfg{};
    config_.lookup(&zero, &cfg);
    return cfg;
}

void Fence::write_config(const fence_config& cfg) const {
    uint32_t zero = 0;
    config_.update(&zero, &cfg);
}

std::optional<rule_value> Fence::lookup_value(const Cidr& cidr) const {
    // The trie answers with the longest rule covering the key's prefix; that is
    // the rule with exactly this prefix whenever one exists.
    rule_value value{};
    bool found;
    if (cidr.family == Family::V4) {
        rule_key_v4 key = key_v4(cidr);
        found = trie(cidr.family).lookup(&key, &value);
    } else {
        rule_key_v6 key = key_v6(cidr);
        found = trie(cidr.family).lookup(&key, &value);
    }
    if (!found || value.prefixlen != cidr.prefixlen) return std::nullopt;
    return value;
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
    if ((value.flags & FENCE_RULE_PACED) && rule_pace_.fd() >= 0 && rule_pace_.lookup(&value.slot, &rule.pace) &&
        rule.pace.rule_id == value.rule_id) {
        rule.limit.message_interval_ns = rule.pace.interval_ns;
    } else {
        rule.pace = {};
    }
    rule_info info{};
    if (rule_info_.lookup(&value.slot, &info)) {
        rule.created_unix = info.created_unix;
        rule.expires_unix = info.expires_unix;
        rule.created_by = fixed_string(info.created_by, sizeof info.created_by);
        rule.origin = fixed_string(info.origin, sizeof info.origin);
        rule.reason = fixed_string(info.reason, sizeof info.reason);
    }
    return rule;
}

uint32_t Fence::allocate_slot() {
    if (used_slots_.empty()) {
        used_slots_.assign(rule_counters_.max_entries(), false);
        for (Family family : {Family::V4, Family::V6}) {
            for (const auto& raw : trie(family).keys(key_size(family))) {
                rule_value value{};
                if (trie(family).lookup(raw.data(), &value) && value.slot < used_slots_.size()) {
                    used_slots_[value.slot] = true;
                }
            }
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

AddResult Fence::add_rule(const RuleSpec& spec) {
    const Cidr& cidr = spec.cidr;
    if (spec.action == Action::Limit && spec.limit.message_interval_ns && (rule_pace_.fd() < 0 || pace_keys_.fd() < 0)) {
        throw UsageError("the program in " + pin_dir_ + " predates --messages: run `smtpfence attach IFACE...` "
                         "with this build first (it upgrades in place, rules stay)");
    }
    auto existing = lookup_value(cidr);
    AddResult result{RuleChange::Added, std::nullopt};
    rule_value value{};
    value.action = static_cast<uint8_t>(spec.action);
    value.prefixlen = cidr.prefixlen;
    value.flags = spec.dry_run ? FENCE_RULE_DRY_RUN : 0;
    value.expires_ns = spec.expires_unix ? boottime_deadline_ns(spec.expires_unix) : 0;
    if (spec.action == Action::Limit) {
        const LimitSpec& limit = spec.limit;
        value.key_prefixlen = limit.key_prefixlen;
        value.max_conns = limit.max_conns;
        value.interval_ns = limit.interval_ns;
        value.tolerance_ns = limit.interval_ns * (limit.burst ? limit.burst - 1 : 0);
    }
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

    rule_info info{};
    bool keep_provenance = false;
    if (result.change == RuleChange::Updated && !spec.exact) {
        keep_provenance = rule_info_.lookup(&value.slot, &info) && info.created_unix != 0;
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
    rule_info_.update(&value.slot, &info);
    if (result.change != RuleChange::Updated) reset_slot_counters(value.slot);
    if (spec.action == Action::Limit && spec.limit.message_interval_ns) {
        // One class when the rule is its only key, else a block of them
        // that keys take round robin. The pace keeps its classes and
        // counters while the rule stays a paced limit with as many classes
        // (its keys' clocks go with the rule id, like the limiter's).
        const uint32_t classes = value.key_prefixlen == cidr.prefixlen ? 1 : FENCE_PACE_KEY_CLASSES;
        rule_pace pace{};
        bool was_paced = existing && existing->action == FENCE_ACTION_LIMIT &&
                         (existing->flags & FENCE_RULE_PACED) && rule_pace_.lookup(&value.slot, &pace) &&
                         pace.rule_id == existing->rule_id && pace.classid != 0 && pace.classes == classes;
        if (!was_paced) {
            pace = rule_pace{};
            pace.classid = pace_classid(allocate_pace_classes(classes));
            pace.classes = classes;
        }
        pace.interval_ns = spec.limit.message_interval_ns;
        pace.rule_id = value.rule_id;
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
    if (cidr.family == Family::V4) {
        rule_key_v4 key = key_v4(cidr);
        trie(cidr.family).update(&key, &value);
    } else {
        rule_key_v6 key = key_v6(cidr);
        trie(cidr.family).update(&key, &value);
    }
    if (existing && !keeps_state && existing->action == FENCE_ACTION_LIMIT) forget_limiter_state(existing->rule_id);
    return result;
}

uint32_t Fence::allocate_pace_classes(uint32_t count) const {
    std::vector<bool> used(0x10000, false);
    used[0] = true;  // minor 0 is the qdisc itself
    for (Family family : {Family::V4, Family::V6}) {
        for (const auto& raw : trie(family).keys(key_size(family))) {
            rule_value value{};
            rule_pace pace{};
            if (trie(family).lookup(raw.data(), &value) && (value.flags & FENCE_RULE_PACED) &&
                rule_pace_.lookup(&value.slot, &pace)) {
                for (uint32_t i = 0; i < std::max<uint32_t>(pace.classes, 1); ++i) {
                    if ((pace.classid & 0xffff) + i < used.size()) used[(pace.classid & 0xffff) + i] = true;
                }
            }
        }
    }
    for (uint32_t first = 1; first + count <= used.size(); ++first) {
        if (std::none_of(used.begin() + first, used.begin() + first + count, [](bool u) { return u; })) return first;
    }
    throw RuntimeError("the 65535 pacing classes are in use: remove paced rules (a rule paced --per source or /LEN "
                       "takes " + std::to_string(FENCE_PACE_KEY_CLASSES) + ")");
}

void Fence::check_pacing_possible() const {
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

namespace {

void append_classes(std::vector<PaceClass>& classes, const rule_pace& pace) {
    for (uint32_t i = 0; i < std::max<uint32_t>(pace.classes, 1); ++i) {
        classes.push_back({(pace.classid & 0xffff) + i, pace.interval_ns});
    }
}

}  // namespace

void Fence::sync_pacing() const {
    publish_pace_classes(nullptr);
}

void Fence::publish_pace_classes(const rule_pace* incoming) const {
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
    for (Family family : {Family::V4, Family::V6}) {
        for (const auto& raw : trie(family).keys(key_size(family))) {
            rule_value value{};
            if (!trie(family).lookup(raw.data(), &value)) continue;
            if (value.expires_ns == 0 || value.expires_ns > now) continue;
            expired.push_back(rule_of(cidr_from_key(family, raw), value));
        }
    }
    for (const auto& rule : expired) remove_rule(rule.cidr);
    std::sort(expired.begin(), expired.end(), [](const Rule& a, const Rule& b) { return a.cidr < b.cidr; });
    return expired;
}

std::vector<const MapRef*> Fence::keyed_state_maps() const {
    std::vector<const MapRef*> maps{&conn_counts_, &limit_state_};
    if (pace_keys_.fd() >= 0) maps.push_back(&pace_keys_);
    return maps;
}

void Fence::forget_limiter_state(uint32_t rule_id) const {
    for (const MapRef* map : keyed_state_maps()) {
        for (const auto& raw : map->keys(sizeof(limit_key))) {
            limit_key key;
            std::memcpy(&key, raw.data(), sizeof key);
            if (key.rule_id == rule_id) map->erase(&key);
        }
    }
}

bool Fence::remove_rule(const Cidr& cidr) {
    auto existing = lookup_value(cidr);
    if (!existing) return false;
    if (cidr.family == Family::V4) {
        rule_key_v4 key = key_v4(cidr);
        trie(cidr.family).erase(&key);
    } else {
        rule_key_v6 key = key_v6(cidr);
        trie(cidr.family).erase(&key);
    }
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
    for (Family family : {Family::V4, Family::V6}) {
        for (const auto& raw : trie(family).keys(key_size(family))) {
            rule_value value{};
            if (!trie(family).lookup(raw.data(), &value)) continue;  // removed meanwhile
            Rule rule = rule_of(cidr_from_key(family, raw), value);
            if (rule.action == Action::Limit) {
                auto it = keys_of_rule.find(value.rule_id);
                rule.tracked_keys = it == keys_of_rule.end() ? 0 : it->second.size();
            }
            out.push_back(std::move(rule));
        }
    }
    std::sort(out.begin(), out.end(), [](const Rule& a, const Rule& b) { return a.cidr < b.cidr; });
    return out;
}

PortSet Fence::ports() const {
    fence_config cfg = read_config();
    PortSet ports;
    for (uint32_t port = 1; port < 65536; ++port) {
        if ((cfg.smtp_ports[port / 64] >> (port % 64)) & 1) ports.insert(static_cast<uint16_t>(port));
    }
    return ports;
}

void Fence::set_ports(const PortSet& ports) {
    fence_config cfg = read_config();
    std::fill(std::begin(cfg.smtp_ports), std::end(cfg.smtp_ports), 0);
    for (uint16_t port : ports) cfg.smtp_ports[port / 64] |= uint64_t{1} << (port % 64);
    write_config(cfg);
}

fence_stats Fence::counters() const {
    return sum_per_cpu<fence_stats>(stats_, 0);
}

uint32_t Fence::program_id() const {
    int fd = bpf_obj_get(pin_path(pin_dir_, FENCE_PIN_PROG).c_str());
    if (fd < 0) return 0;
    UniqueFd prog(fd);
    struct bpf_prog_info info {};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0) return 0;
    return info.id;
}

std::vector<Attachment> Fence::attachments() const {
    std::vector<Attachment> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(pin_dir_ + "/" FENCE_PIN_LINKS_DIR, ec)) {
        Attachment a;
        a.name = entry.path().filename().string();
        int fd = bpf_obj_get(entry.path().c_str());
        if (fd >= 0) {
            UniqueFd link(fd);
            LinkInfo info = link_info(link.get());
            a.ifindex = info.ifindex;
            a.link_id = info.link_id;
            a.program_id = info.program_id;
            a.mode = xdp_mode_of(info.ifindex, info.program_id);
        } else {
            a.mode = "detached";
        }
        out.push_back(std::move(a));
    }
    std::sort(out.begin(), out.end(), [](const Attachment& a, const Attachment& b) { return a.name < b.name; });
    return out;
}

namespace {

// Sizes the rule maps: the pinned ones keep their size (libbpf only reuses a
// pin whose definition matches), new ones get `max_rules` per family; the
// slot maps serve both families.
void size_rule_maps(smtpfence_bpf* skel, const std::string& pin_dir, uint32_t max_rules) {
    const std::pair<bpf_map*, uint32_t> sizes[] = {{skel->maps.rules_v4, max_rules},
                                                   {skel->maps.rules_v6, max_rules},
                                                   {skel->maps.rule_counters, 2 * max_rules},
                                                   {skel->maps.rule_info, 2 * max_rules},
                                                   {skel->maps.rule_pace, 2 * max_rules}};
    for (auto [map, size] : sizes) {
        int fd = bpf_obj_get(pin_path(pin_dir, bpf_map__name(map)).c_str());
        if (fd >= 0) {
            UniqueFd pinned(fd);
            struct bpf_map_info info {};
            __u32 len = sizeof(info);
            if (bpf_obj_get_info_by_fd(pinned.get(), &info, &len) == 0) size = info.max_entries;
        }
        bpf_map__set_max_entries(map, size);
    }
}

uint64_t current_netns_cookie() {
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (!sock || ::getsockopt(sock.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) {
        throw RuntimeError(describe_errno("read this network namespace's cookie", errno));
    }
    return cookie;
}

// Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a unified
// system, /sys/fs/cgroup/unified on a hybrid one; "" if nowhere.
std::string cgroup2_root() {
    std::ifstream mounts("/proc/self/mounts");
    std::string device, dir, type, rest;
    std::string found;
    while (mounts >> device >> dir >> type && std::getline(mounts, rest)) {
        if (type != "cgroup2") continue;
        if (dir == "/sys/fs/cgroup") return dir;
        if (found.empty()) found = dir;
    }
    return found;
}

// The --max-conns bookkeeping runs on the host's TCP sockets: a sock_ops
// program on the cgroup v2 root, attached once per instance and swapped
// atomically like the XDP program.
void attach_sockops(const std::string& pin_dir, int prog_fd, std::vector<std::string>& notes) {
    std::string pin = pin_path(pin_dir, FENCE_PIN_SOCKOPS_LINK);
    if (int fd = bpf_obj_get(pin.c_str()); fd >= 0) {
        UniqueFd link(fd);
        if (bpf_link_update(link.get(), prog_fd, nullptr) != 0) {
            throw RuntimeError(describe_errno("update the connection counter", errno));
        }
        return;
    }
    std::string root = cgroup2_root();
    if (root.empty()) {
        notes.push_back("cgroup v2 is not mounted: `limit --max-conns` cannot count connections (block, allow and "
                        "--rate work); mount it with `mount -t cgroup2 none /sys/fs/cgroup/unified`");
        return;
    }
    UniqueFd cgroup(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup) throw RuntimeError(describe_errno("open " + root, errno));
    int fd = bpf_link_create(prog_fd, cgroup.get(), BPF_CGROUP_SOCK_OPS, nullptr);
    if (fd < 0) throw RuntimeError(describe_errno("attach the connection counter to " + root, errno));
    UniqueFd link(fd);
    if (bpf_obj_pin(link.get(), pin.c_str()) != 0) throw RuntimeError(describe_errno("pin " + pin, errno));
}

void detach_sockops(const std::string& pin_dir) {
    std::string pin = pin_path(pin_dir, FENCE_PIN_SOCKOPS_LINK);
    if (int fd = bpf_obj_get(pin.c_str()); fd >= 0) {
        UniqueFd link(fd);
        bpf_link_detach(link.get());
        ::unlink(pin.c_str());
    }
}

// Pins the program under a temporary name (bpffs forbids dots in names) and renames it over the old pin,
// so that the pin always names a whole program.
void pin_program(const std::string& pin_dir, int prog_fd) {
    std::string final_path = pin_path(pin_dir, FENCE_PIN_PROG);
    std::string tmp_path = final_path + "_new";
    ::unlink(tmp_path.c_str());
    if (bpf_obj_pin(prog_fd, tmp_path.c_str()) != 0) throw RuntimeError(describe_errno("pin " + tmp_path, errno));
    if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
        throw RuntimeError(describe_errno("rename " + tmp_path, errno));
    }
}

uint32_t xdp_flags(XdpMode mode) {
    switch (mode) {
    case XdpMode::Native: return XDP_FLAGS_DRV_MODE;
    case XdpMode::Generic: return XDP_FLAGS_SKB_MODE;
    case XdpMode::Auto: break;
    }
    return 0;
}

UniqueFd create_link(int prog_fd, const std::string& ifname, int ifindex, XdpMode mode) {
    // Refuse to fight over the interface with somebody else's program.
    LIBBPF_OPTS(bpf_xdp_query_opts, query);
    if (bpf_xdp_query(ifindex, 0, &query) == 0 && query.prog_id != 0) {
        throw RuntimeError(ifname + " already runs XDP program id " + std::to_string(query.prog_id) +
                           ", which is not smtpfence's: remove it first (`ip link set dev " + ifname +
                           " xdp off`; `bpftool net show dev " + ifname + "` shows it)");
    }
    std::vector<XdpMode> tries = mode == XdpMode::Auto ? std::vector{XdpMode::Native, XdpMode::Generic}
                                                       : std::vector{mode};
    int err = 0;
    for (XdpMode m : tries) {
        LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = xdp_flags(m));
        int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
        if (fd >= 0) return UniqueFd(fd);
        err = errno;
        if (err == EPERM || err == EACCES) break;
    }
    std::string msg = describe_errno("attach " + ifname, err);
    if (err == EPERM) msg += " (need CAP_NET_ADMIN)";
    if (mode == XdpMode::Native && (err == EOPNOTSUPP || err == EINVAL)) {
        msg += "; the driver may not support native XDP: try --mode generic";
    }
    throw RuntimeError(msg);
}

}  // namespace

namespace {

// The pinned maps' layout against this build's (the opened, not yet loaded,
// skeleton): each pinned map must have this build's type, key size and value
// size, and the config map this build's layout version. Without this check
// libbpf would refuse to reuse a mismatched pin with a bare EINVAL, or, worse,
// a same-sized map of another meaning would be read as ours.
void check_layout_against(const std::string& pin_dir, const bpf_object* obj) {
    std::vector<std::string> differences;
    uint32_t pinned_version = FENCE_LAYOUT_VERSION;
    const bpf_map* map = nullptr;
    while ((map = bpf_object__next_map(obj, map)) != nullptr) {
        const char* name = bpf_map__name(map);
        std::string pin = pin_path(pin_dir, name);
        int fd = bpf_obj_get(pin.c_str());
        if (fd < 0) continue;  // not pinned (yet): this build creates it
        UniqueFd pinned(fd);
        struct bpf_map_info info {};
        __u32 len = sizeof(info);
        if (bpf_obj_get_info_by_fd(pinned.get(), &info, &len) != 0) {
            throw RuntimeError(describe_errno("inspect " + pin, errno));
        }
        if (info.type != static_cast<__u32>(bpf_map__type(map)) || info.key_size != bpf_map__key_size(map) ||
            info.value_size != bpf_map__value_size(map)) {
            differences.push_back(std::string(name) + " (key " + std::to_string(info.key_size) + " / value " +
                                  std::to_string(info.value_size) + " bytes, this build: " +
                                  std::to_string(bpf_map__key_size(map)) + " / " +
                                  std::to_string(bpf_map__value_size(map)) + ")");
            continue;
        }
        if (std::string(name) == FENCE_MAP_CONFIG) {
            uint32_t zero = 0;
            fence_config cfg{};
            if (bpf_map_lookup_elem(pinned.get(), &zero, &cfg) == 0 && cfg.magic == FENCE_CONFIG_MAGIC) {
                pinned_version = cfg.layout_version;
            }
        }
    }
    if (pinned_version == FENCE_LAYOUT_VERSION && differences.empty()) return;
    std::string msg = "refusing to attach: the maps pinned in " + pin_dir + " have map layout version " +
                      std::to_string(pinned_version) + ", this smtpfence build uses layout version " +
                      std::to_string(FENCE_LAYOUT_VERSION);
    if (!differences.empty()) {
        msg += "; maps that differ: ";
        for (size_t i = 0; i < differences.size(); ++i) msg += (i ? ", " : "") + differences[i];
    }
    throw RuntimeError(msg + ". Nothing was changed: the old program and its rules stay in force. " +
                       layout_migration_hint(pin_dir));
}

}  // namespace

void check_pinned_layout(const std::string& pin_dir) {
    if (!fs::exists(pin_dir)) return;
    LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_dir.c_str());
    std::unique_ptr<smtpfence_bpf, void (*)(smtpfence_bpf*)> skel(smtpfence_bpf__open_opts(&open_opts),
                                                                   smtpfence_bpf__destroy);
    if (!skel) throw RuntimeError(describe_errno("open the embedded BPF object", errno));
    check_layout_against(pin_dir, skel->obj);
}

LoadedProgram::LoadedProgram(const std::string& pin_dir, uint32_t max_rules) {
    LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_dir.c_str());
    skel_.reset(smtpfence_bpf__open_opts(&open_opts));
    if (!skel_) throw RuntimeError(describe_errno("open the embedded BPF object", errno));
    size_rule_maps(skel_.get(), pin_dir, max_rules);
    if (int err = smtpfence_bpf__load(skel_.get()); err != 0) {
        std::string msg = describe_errno("load the XDP program", -err);
        if (-err == EINVAL) {
            msg += "; if " + pin_dir + " holds maps of another smtpfence version, detach and remove them, or run "
                   "with -v for libbpf's detail";
        }
        throw RuntimeError(msg);
    }
    uint32_t zero = 0;
    fence_config cfg{};
    int config_fd = bpf_map__fd(skel_->maps.config);
    if (bpf_map_lookup_elem(config_fd, &zero, &cfg) != 0) {
        throw RuntimeError(describe_errno("read map config", errno));
    }
    if (cfg.magic != FENCE_CONFIG_MAGIC) cfg = default_config();
    // The namespace this program guards: the one it is loaded from.
    cfg.netns_cookie = current_netns_cookie();
    if (bpf_map_update_elem(config_fd, &zero, &cfg, 0) != 0) {
        throw RuntimeError(describe_errno("write map config", errno));
    }
}

LoadedProgram::~LoadedProgram() = default;

void LoadedProgram::SkeletonDeleter::operator()(::smtpfence_bpf* skel) const {
    smtpfence_bpf__destroy(skel);
}

int LoadedProgram::fd() const {
    return bpf_program__fd(skel_->progs.smtpfence_xdp);
}

int LoadedProgram::sockops_fd() const {
    return bpf_program__fd(skel_->progs.smtpfence_sockops);
}

int LoadedProgram::pace_fd() const {
    return bpf_program__fd(skel_->progs.smtpfence_pace);
}

std::vector<AttachOutcome> attach(const std::string& pin_dir, const std::vector<std::string>& interfaces,
                                  XdpMode mode, uint32_t max_rules, std::vector<std::string>& notes) {
    std::vector<std::pair<std::string, int>> targets;
    for (const auto& name : interfaces) {
        unsigned ifindex = if_nametoindex(name.c_str());
        if (ifindex == 0) {
            throw UsageError("no interface named '" + name + "' in this network namespace (`ip link` lists them)");
        }
        targets.emplace_back(name, static_cast<int>(ifindex));
    }

    // Before anything is created or loaded: an incompatible pin dir stays as it is.
    check_pinned_layout(pin_dir);
    if (std::string note = prepare_pin_dir(pin_dir); !note.empty()) notes.push_back(note);
    PinDirLock lock(pin_dir);
    LoadedProgram program(pin_dir, max_rules);
    int prog_fd = program.fd();
    pin_program(pin_dir, prog_fd);

    // Every existing attachment switches to the new program in one atomic step:
    // no packet sees an interface without a program.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(pin_dir + "/" FENCE_PIN_LINKS_DIR, ec)) {
        std::string name = entry.path().filename().string();
        int fd = bpf_obj_get(entry.path().c_str());
        if (fd < 0) continue;
        UniqueFd link(fd);
        if (link_info(link.get()).ifindex == 0) {
            ::unlink(entry.path().c_str());
            notes.push_back("removed the attachment to " + name + ": the interface is gone");
            continue;
        }
        if (bpf_link_update(link.get(), prog_fd, nullptr) != 0) {
            throw RuntimeError(describe_errno("update the program on " + name, errno));
        }
        attach_egress(name, link_info(link.get()).ifindex, program.pace_fd());
    }

    attach_sockops(pin_dir, program.sockops_fd(), notes);

    std::vector<AttachOutcome> outcomes;
    for (const auto& [name, ifindex] : targets) {
        std::string pin = link_pin_path(pin_dir, name);
        AttachChange change = AttachChange::New;
        if (int fd = bpf_obj_get(pin.c_str()); fd >= 0) {
            UniqueFd link(fd);
            LinkInfo info = link_info(link.get());
            std::string current = xdp_mode_of(info.ifindex, info.program_id);
            bool mode_ok = mode == XdpMode::Auto || (mode == XdpMode::Native && current == "native") ||
                           (mode == XdpMode::Generic && current == "generic");
            if (info.ifindex == ifindex && mode_ok) {
                outcomes.push_back({name, current, AttachChange::Swapped});
                continue;
            }
            // Another interface now has this name, or another mode was asked
            // for: the kernel cannot switch modes in place.
            bpf_link_detach(link.get());
            ::unlink(pin.c_str());
            change = AttachChange::Reattached;
        }
        UniqueFd link = create_link(prog_fd, name, ifindex, mode);
        if (bpf_obj_pin(link.get(), pin.c_str()) != 0) {
            int err = errno;
            bpf_link_detach(link.get());
            throw RuntimeError(describe_errno("pin " + pin, err));
        }
        attach_egress(name, ifindex, program.pace_fd());
        outcomes.push_back({name, xdp_mode_of(ifindex, link_info(link.get()).program_id), change});
    }
    return outcomes;
}

std::vector<std::string> detach(const std::string& pin_dir, const std::vector<std::string>& interfaces) {
    if (!fs::exists(pin_dir)) {
        throw RuntimeError("no smtpfence instance in " + pin_dir + ": nothing is attached");
    }
    PinDirLock lock(pin_dir);
    std::vector<std::string> not_attached;
    for (const auto& name : interfaces) {
        std::string pin = link_pin_path(pin_dir, name);
        int fd = bpf_obj_get(pin.c_str());
        if (fd < 0) {
            if (errno != ENOENT) throw RuntimeError(describe_errno("open " + pin, errno));
            if (if_nametoindex(name.c_str()) == 0) {
                throw UsageError("no interface named '" + name + "' and no smtpfence attachment by that name " +
                                 "(`smtpfence status` lists the attachments)");
            }
            not_attached.push_back(name);
            continue;
        }
        UniqueFd link(fd);
        // Pacing first: its HTB root goes (the kernel's default qdisc comes
        // back) while the XDP program still guards the interface.
        if (int ifindex = link_info(link.get()).ifindex; ifindex != 0) {
            detach_egress(name, ifindex);
            sync_pace_classes(name, {});
        }
        if (bpf_link_detach(link.get()) != 0 && errno != EINVAL) {
            throw RuntimeError(describe_errno("detach " + name, errno));
        }
        ::unlink(pin.c_str());
    }
    std::error_code ec;
    if (fs::is_empty(pin_dir + "/" FENCE_PIN_LINKS_DIR, ec) && !ec) detach_sockops(pin_dir);
    return not_attached;
}

}  // namespace smtpfence
