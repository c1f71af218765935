// The list set: every imported list compiled into the two structures the data
// path reads (see FENCE_MAX_LISTS in smtpfence_abi.h), and their publication,
// which switches the whole set at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "smtpfence_abi.h"
#include "text/cidr.h"

namespace smtpfence {

// One list as the compiler needs it. Among lists that list the same prefix,
// the lower `rank` wins.
struct ListToCompile {
    uint32_t index = 0;  // its list_rules entry
    uint32_t rank = 0;
    const std::vector<Cidr>* v4 = nullptr;
    const std::vector<Cidr>* v6 = nullptr;
};

struct CompiledListSet {
    // The IPv4 table, the IPv6 lengths in it (FENCE_LIST_V6_SHORT and _LONG),
    // then its blocks.
    std::vector<uint64_t> cells;
    struct Prefix {
        list_key key;
        list_value value;
    };
    // The hash's entries, ordered by key (list_key_before).
    std::vector<Prefix> prefixes;
};

// The order of CompiledListSet::prefixes.
bool list_key_before(const list_key& a, const list_key& b);

CompiledListSet compile_list_set(const std::vector<ListToCompile>& lists);

// What the data path finds for `address` (a /32 or /128): a FENCE_LIST_HIT or
// 0. The same walk as bpf/rules.h, for tests.
uint32_t lookup_compiled(const CompiledListSet& set, const Cidr& address);

// The kernel maps of a compiled set, made at its size and filled, ready to be
// put in a slot of list_v4_sets and list_prefix_sets.
struct ListSetMaps {
    UniqueFd v4_cells;
    UniqueFd prefixes;
};
ListSetMaps create_list_set_maps(const CompiledListSet& set);

// Returns once every BPF program that may have read the old fence_config.list_set
// has finished: an RCU grace period (membarrier MEMBARRIER_CMD_GLOBAL).
void wait_for_data_path_readers();

}  // namespace smtpfence
