#include "fence/lists.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "base/errors.h"
#include "bpf/pin_dir.h"
#include "fence/list_set.h"
#include "fence/state_file.h"
#include "text/durations.h"

namespace smtpfence {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kListFileSuffix = ".list";
// More than a list file's header takes (each of its values is one short line).
constexpr size_t kListHeaderBytes = 16384;

std::string name_in(const list_info& info) {
    return std::string(info.name, strnlen(info.name, sizeof info.name));
}

// Allow lists before block lists, then by name: the lower rank wins where two
// lists hold the same prefix.
std::vector<uint32_t> ranks_of(const std::vector<StoredList>& lists) {
    std::vector<size_t> order(lists.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const bool allow_a = lists[a].action == Action::Allow, allow_b = lists[b].action == Action::Allow;
        if (allow_a != allow_b) return allow_a;
        return lists[a].name < lists[b].name;
    });
    std::vector<uint32_t> rank(lists.size());
    for (size_t r = 0; r < order.size(); ++r) rank[order[r]] = static_cast<uint32_t>(r);
    return rank;
}

size_t count_common(const std::vector<Cidr>& a, const std::vector<Cidr>& b) {
    size_t common = 0;
    for (auto i = a.begin(), j = b.begin(); i != a.end() && j != b.end();) {
        if (*i < *j) {
            ++i;
        } else if (*j < *i) {
            ++j;
        } else {
            ++common, ++i, ++j;
        }
    }
    return common;
}

}  // namespace

FenceLists FenceLists::open(const std::string& pin_dir, const std::string& store_dir) {
    FenceLists lists;
    lists.pin_dir_ = pin_dir;
    lists.store_dir_ = store_dir;
    auto map = [&](const char* name) { return MapRef(open_pinned(pin_path(pin_dir, name)), name); };
    lists.config_ = map(FENCE_MAP_CONFIG);
    lists.rule_counters_ = map(FENCE_MAP_RULE_COUNTERS);
    lists.list_rules_ = map(FENCE_MAP_LIST_RULES);
    lists.list_info_ = map(FENCE_MAP_LIST_INFO);
    lists.v4_sets_ = map(FENCE_MAP_LIST_V4_SETS);
    lists.prefix_sets_ = map(FENCE_MAP_LIST_PREFIX_SETS);
    return lists;
}

std::string FenceLists::file_of(const std::string& name) const {
    return (fs::path(store_dir_) / (name + std::string(kListFileSuffix))).string();
}

std::optional<StoredList> FenceLists::load(const std::string& name) const {
    const std::string path = file_of(name);
    const std::optional<std::string> content = read_file(path);
    if (!content) return std::nullopt;
    return parse_list_file(*content, path);
}

std::vector<fs::path> FenceLists::list_files() const {
    std::vector<fs::path> files;
    std::error_code ec;
    if (!fs::is_directory(store_dir_, ec)) return files;
    for (const fs::directory_entry& entry : fs::directory_iterator(store_dir_)) {
        const fs::path& path = entry.path();
        // ".NAME.list.tmp" is a write in progress (write_file_atomically).
        if (path.extension() == kListFileSuffix && !path.filename().string().starts_with(".")) files.push_back(path);
    }
    return files;
}

std::vector<StoredList> FenceLists::load_all() const {
    std::vector<StoredList> lists;
    for (const fs::path& path : list_files()) {
        if (std::optional<std::string> content = read_file(path.string())) {
            lists.push_back(parse_list_file(*content, path.string()));
        }
    }
    std::sort(lists.begin(), lists.end(), [](const StoredList& a, const StoredList& b) { return a.name < b.name; });
    return lists;
}

std::optional<uint32_t> FenceLists::index_of(const std::string& name) const {
    for (uint32_t i = 0; i < FENCE_MAX_LISTS; ++i) {
        const auto rule = list_rules_.find<rule_value>(i);
        if (!rule || !rule->action) continue;
        if (const auto info = list_info_.find<list_info>(i); info && name_in(*info) == name) return i;
    }
    return std::nullopt;
}

uint32_t FenceLists::free_index(const std::vector<uint32_t>& taken) const {
    for (uint32_t i = 0; i < FENCE_MAX_LISTS; ++i) {
        if (std::find(taken.begin(), taken.end(), i) != taken.end()) continue;
        const auto rule = list_rules_.find<rule_value>(i);
        if (!rule || !rule->action) return i;
    }
    throw UsageError("a fence holds at most " + std::to_string(FENCE_MAX_LISTS) +
                     " lists: remove one with `smtpfence unimport NAME`, or merge two into one file");
}

std::vector<uint32_t> FenceLists::indexes_for(const std::vector<StoredList>& lists) const {
    std::vector<uint32_t> index;
    for (const StoredList& l : lists) {
        const std::optional<uint32_t> found = index_of(l.name);
        index.push_back(found ? *found : free_index(index));
    }
    return index;
}

uint32_t FenceLists::counter_slot(uint32_t index) const {
    return rule_counters_.max_entries() - FENCE_MAX_LISTS + index;
}

void FenceLists::clear_counters(uint32_t index) const {
    const uint32_t slot = counter_slot(index);
    std::vector<rule_counters> zeros(possible_cpus());
    rule_counters_.update(&slot, zeros.data());
}

fence_config FenceLists::read_config() const {
    uint32_t zero = 0;
    return config_.find<fence_config>(zero).value_or(fence_config{});
}

void FenceLists::write_config(const fence_config& cfg) const {
    uint32_t zero = 0;
    config_.update(&zero, &cfg);
}

void FenceLists::publish(const std::vector<StoredList>& lists, const std::vector<uint32_t>& index,
                         const std::vector<uint32_t>& freed) {
    const std::vector<uint32_t> rank = ranks_of(lists);
    std::vector<ListToCompile> inputs;
    for (size_t i = 0; i < lists.size(); ++i) inputs.push_back({index[i], rank[i], &lists[i].v4, &lists[i].v6});
    const CompiledListSet set = compile_list_set(inputs);

    fence_config cfg = read_config();
    const uint32_t old_set = cfg.list_set;
    const uint32_t slot = old_set == 1 ? 1 : 0;
    if (!lists.empty()) {
        const ListSetMaps maps = create_list_set_maps(set);
        const int cells_fd = maps.v4_cells.get(), prefixes_fd = maps.prefixes.get();
        v4_sets_.update(&slot, &cells_fd);
        prefix_sets_.update(&slot, &prefixes_fd);
    }
    // The rules of the lists, before the set that points to them. A list
    // that stays keeps its id (and so its counters) unless its action changes.
    for (size_t i = 0; i < lists.size(); ++i) {
        const StoredList& list = lists[i];
        const auto old = list_rules_.find<rule_value>(index[i]);
        const uint8_t action = static_cast<uint8_t>(list.action);
        rule_value rule{};
        rule.slot = counter_slot(index[i]);
        rule.action = action;
        rule.flags = FENCE_RULE_LIST;
        rule.expires_ns = list.expires_unix ? boottime_deadline_ns(list.expires_unix) : 0;
        if (old && old->action == action) {
            rule.rule_id = old->rule_id;
        } else {
            if (!old || !old->action) clear_counters(index[i]);
            rule.rule_id = ++cfg.next_rule_id;
        }
        list_rules_.update(&index[i], &rule);
        list_info info{};
        std::memcpy(info.name, list.name.data(), std::min(list.name.size(), sizeof info.name - 1));
        info.v4_prefixes = list.v4.size();
        info.v6_prefixes = list.v6.size();
        list_info_.update(&index[i], &info);
    }
    cfg.list_set = lists.empty() ? 0 : slot + 1;
    write_config(cfg);
    if (old_set == 0 && freed.empty()) return;
    wait_for_data_path_readers();
    if (old_set != 0) {
        const uint32_t old_slot = old_set - 1;
        v4_sets_.erase(&old_slot);
        prefix_sets_.erase(&old_slot);
    }
    for (uint32_t i : freed) {
        const rule_value none{};
        const list_info no_info{};
        list_rules_.update(&i, &none);
        list_info_.update(&i, &no_info);
        clear_counters(i);
    }
}

ImportSummary FenceLists::import(const StoredList& list) {
    std::vector<StoredList> lists = load_all();
    ImportSummary summary;
    auto same = std::find_if(lists.begin(), lists.end(), [&](const StoredList& l) { return l.name == list.name; });
    if (same == lists.end()) {
        summary.created = true;
        summary.added = list.v4.size() + list.v6.size();
        lists.push_back(list);
    } else {
        summary.unchanged = count_common(same->v4, list.v4) + count_common(same->v6, list.v6);
        summary.added = list.v4.size() + list.v6.size() - summary.unchanged;
        summary.removed = same->v4.size() + same->v6.size() - summary.unchanged;
        *same = list;
    }
    publish(lists, indexes_for(lists), {});
    make_directories(store_dir_);
    write_file_atomically(file_of(list.name), format_list_file(list));
    return summary;
}

bool FenceLists::unimport(const std::string& name) {
    std::vector<StoredList> lists = load_all();
    const auto gone = std::find_if(lists.begin(), lists.end(), [&](const StoredList& l) { return l.name == name; });
    const std::optional<uint32_t> gone_index = index_of(name);
    if (gone == lists.end() && !gone_index) return false;
    if (gone != lists.end()) lists.erase(gone);
    std::vector<uint32_t> freed;
    if (gone_index) freed.push_back(*gone_index);
    publish(lists, indexes_for(lists), freed);
    std::error_code ec;
    fs::remove(file_of(name), ec);
    if (ec) throw RuntimeError(describe_errno("remove " + file_of(name), ec.value()));
    return true;
}

std::vector<std::string> FenceLists::reap_expired(uint64_t now_unix) {
    std::vector<std::string> expired;
    for (const ListStatus& status : lists()) {
        if (status.stored.expires_unix && status.stored.expires_unix <= now_unix) expired.push_back(status.stored.name);
    }
    for (const std::string& name : expired) unimport(name);
    return expired;
}

size_t FenceLists::restore() {
    std::vector<StoredList> lists = load_all();
    const uint64_t now = unix_now();
    std::erase_if(lists, [&](const StoredList& l) { return l.expires_unix && l.expires_unix <= now; });
    const std::vector<uint32_t> index = indexes_for(lists);
    std::vector<uint32_t> freed;
    // Lists in the kernel without a file are not kept.
    for (uint32_t i = 0; i < FENCE_MAX_LISTS; ++i) {
        const auto rule = list_rules_.find<rule_value>(i);
        if (rule && rule->action && std::find(index.begin(), index.end(), i) == index.end()) freed.push_back(i);
    }
    publish(lists, index, freed);
    return lists.size();
}

std::vector<ListStatus> FenceLists::lists() const {
    std::map<std::string, ListStatus> by_name;
    for (uint32_t i = 0; i < FENCE_MAX_LISTS; ++i) {
        const auto rule = list_rules_.find<rule_value>(i);
        const auto info = list_info_.find<list_info>(i);
        if (!rule || !rule->action || !info) continue;
        ListStatus status;
        status.index = i;
        status.in_force = true;
        status.rule = *rule;
        status.counters = sum_per_cpu<rule_counters>(rule_counters_, rule->slot);
        status.v4_prefixes = info->v4_prefixes;
        status.v6_prefixes = info->v6_prefixes;
        status.stored.name = name_in(*info);
        status.stored.action = rule->action == FENCE_ACTION_ALLOW ? Action::Allow : Action::Block;
        by_name[status.stored.name] = status;
    }
    for (const fs::path& path : list_files()) {
        // The header is all a summary needs: a million prefixes stay unread.
        std::ifstream file(path);
        std::string head(kListHeaderBytes, '\0');
        file.read(head.data(), static_cast<std::streamsize>(head.size()));
        head.resize(static_cast<size_t>(file.gcount()));
        StoredList header = parse_list_file_header(head, path.string());
        by_name[header.name].stored = std::move(header);
    }
    std::vector<ListStatus> out;
    for (auto& [name, status] : by_name) out.push_back(std::move(status));
    return out;
}

std::map<uint32_t, std::string> FenceLists::names_by_rule_id() const {
    std::map<uint32_t, std::string> names;
    for (uint32_t i = 0; i < FENCE_MAX_LISTS; ++i) {
        const auto rule = list_rules_.find<rule_value>(i);
        if (!rule || !rule->action) continue;
        if (const auto info = list_info_.find<list_info>(i)) names[rule->rule_id] = name_in(*info);
    }
    return names;
}

FenceLists::Totals FenceLists::totals() const {
    Totals totals;
    for (uint32_t i = 0; i < FENCE_MAX_LISTS; ++i) {
        const auto rule = list_rules_.find<rule_value>(i);
        const auto info = list_info_.find<list_info>(i);
        if (!rule || !rule->action || !info) continue;
        ++totals.lists;
        totals.prefixes += info->v4_prefixes + info->v6_prefixes;
    }
    return totals;
}

}  // namespace smtpfence
