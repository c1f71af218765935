// The imported lists of one fence (`smtpfence import`): each kept in a file of
// the list store (text/list_file.h), and all of them compiled into the list
// set the data path reads (fence/list_set.h), published whole. Callers hold
// the pin-dir lock (FenceSession).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bpf/map.h"
#include "smtpfence_abi.h"
#include "text/list_file.h"

namespace smtpfence {

// What an import changed in its list.
struct ImportSummary {
    bool created = false;  // the list is new
    size_t added = 0, removed = 0, unchanged = 0;
};

// A list as `smtpfence lists` shows it.
struct ListStatus {
    StoredList stored;  // its file's header (no prefixes)
    uint32_t index = 0;
    bool in_force = false;  // the kernel has it (else only its file: restore it)
    rule_value rule{};
    rule_counters counters{};
    uint64_t v4_prefixes = 0, v6_prefixes = 0;
};

class FenceLists {
public:
    // The lists of the instance in `pin_dir` (its maps must have lists: a
    // RuntimeError says to re-attach otherwise), stored in `store_dir`.
    static FenceLists open(const std::string& pin_dir, const std::string& store_dir);

    // Makes `list` the list of its name (its prefixes, action, deadline and
    // story): in the kernel at once, then in its file.
    ImportSummary import(const StoredList& list);
    // Removes the list; false when there is none of that name.
    bool unimport(const std::string& name);
    // Removes the lists whose deadline has passed and returns their names.
    std::vector<std::string> reap_expired(uint64_t now_unix);
    // Publishes every stored list that has not expired (boot, restore, a
    // kernel that lost them); returns how many.
    size_t restore();

    // Every list, in force or stored, by name.
    std::vector<ListStatus> lists() const;
    // The whole stored list of that name, prefixes included.
    std::optional<StoredList> load(const std::string& name) const;
    // The name of each list in force, by its rule id (what events and `top`
    // know of a list that decided).
    std::map<uint32_t, std::string> names_by_rule_id() const;
    // Lists in force, and their prefixes: a cheap summary from the kernel.
    struct Totals {
        size_t lists = 0;
        uint64_t prefixes = 0;
    };
    Totals totals() const;

    const std::string& store_dir() const { return store_dir_; }

private:
    FenceLists() = default;
    std::string file_of(const std::string& name) const;
    // The stored lists' files, in no order.
    std::vector<std::filesystem::path> list_files() const;
    std::vector<StoredList> load_all() const;
    // The list_rules index of each name in force.
    std::optional<uint32_t> index_of(const std::string& name) const;
    uint32_t free_index(const std::vector<uint32_t>& taken) const;
    // The list_rules index of each of `lists`: the one it has, or a free one.
    std::vector<uint32_t> indexes_for(const std::vector<StoredList>& lists) const;
    // Compiles `lists` (index[i] is lists[i]'s entry) into a new set, writes
    // their rules and names, switches the data path to it and frees the old
    // set; entries in `freed` are cleared once no packet can still use them.
    void publish(const std::vector<StoredList>& lists, const std::vector<uint32_t>& index,
                 const std::vector<uint32_t>& freed);
    uint32_t counter_slot(uint32_t index) const;
    void clear_counters(uint32_t index) const;
    fence_config read_config() const;
    void write_config(const fence_config& cfg) const;

    std::string pin_dir_, store_dir_;
    MapRef config_, rule_counters_, list_rules_, list_info_, v4_sets_, prefix_sets_;
};

}  // namespace smtpfence
