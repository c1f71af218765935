#include "fence/list_set.h"

#include <bpf/bpf.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <tuple>

#include "base/errors.h"

namespace smtpfence {

namespace {

uint32_t host_v4(const std::array<uint8_t, 16>& addr) {
    return uint32_t{addr[0]} << 24 | uint32_t{addr[1]} << 16 | uint32_t{addr[2]} << 8 | addr[3];
}

struct Entry {
    const Cidr* cidr;
    uint32_t rank;
    uint32_t hit;
};

// Shorter prefixes first, so that a longer one painted later overwrites the
// part of them it covers; at the same length the winning (lowest) rank last.
void sort_for_painting(std::vector<Entry>& entries) {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return std::tie(a.cidr->prefixlen, b.rank) < std::tie(b.cidr->prefixlen, a.rank);
    });
}

list_key key_of(uint32_t key_prefixlen, const uint8_t* addr, size_t bytes) {
    list_key key{};
    key.prefixlen = key_prefixlen;
    std::memcpy(key.addr, addr, bytes);
    return key;
}

// IPv4 up to /24 in the 16-8 table; /25../32 in the hash, announced in the
// cell of their /24. A block starts as a copy of the cell it refines, so
// what a shorter prefix painted stays true inside it.
void compile_v4(std::vector<Entry> entries, CompiledListSet& set, std::vector<std::pair<CompiledListSet::Prefix, uint32_t>>& hashed) {
    auto& cells = set.cells;
    const auto refine = [&cells](size_t cell) {
        if (!(cells[cell] & FENCE_LIST_BLOCK)) {
            const uint64_t start = cells.size();
            cells.resize(cells.size() + 256, cells[cell]);
            cells[cell] = FENCE_LIST_BLOCK | start;
        }
        return static_cast<size_t>(static_cast<uint32_t>(cells[cell]));
    };
    sort_for_painting(entries);
    // Capacity for every block the longer prefixes may make (at most one per
    // /16): growing a table of hundreds of MiB by copies would cost more
    // than the painting. Reserved pages are only touched when used.
    const size_t longer = static_cast<size_t>(std::count_if(entries.begin(), entries.end(), [](const Entry& e) { return e.cidr->prefixlen > 16; }));
    cells.reserve(cells.size() + 256 * std::min<size_t>(FENCE_LIST_V4_ROOT, longer));
    for (const Entry& e : entries) {
        const uint32_t addr = host_v4(e.cidr->addr);
        const uint8_t len = e.cidr->prefixlen;
        if (len > 24) {
            const size_t cell = refine(addr >> 16) + ((addr >> 8) & 0xff);
            cells[cell] |= uint64_t{1} << (FENCE_LIST_LONGER_SHIFT + len - 25);
            CompiledListSet::Prefix prefix{key_of(FENCE_LIST_KEY_V4 | len, e.cidr->addr.data(), 4), {}};
            prefix.value.hit = e.hit;
            hashed.push_back({prefix, e.rank});
            continue;
        }
        size_t first, count;
        if (len <= 16) {
            first = addr >> 16;
            count = size_t{1} << (16 - len);
        } else {
            first = refine(addr >> 16) + ((addr >> 8) & 0xff);
            count = size_t{1} << (24 - len);
        }
        // Only longer prefixes make blocks or announce lengths, and they
        // come later: a painted cell holds neither.
        std::fill_n(cells.begin() + static_cast<std::ptrdiff_t>(first), count, e.hit);
    }
}

// IPv6: every /32 that holds listed prefixes gets a gate: the lengths above
// /32 listed inside it, and the hit of the longest prefix up to /32 that
// covers it (prefixes /24../32 are spread over the gates of their /32s).
// Prefixes above /32 and below /24 go in the hash.
void compile_v6(std::vector<Entry> entries, CompiledListSet& set, std::vector<std::pair<CompiledListSet::Prefix, uint32_t>>& hashed) {
    struct GateLength {
        uint32_t top;
        uint8_t prefixlen;  // 0: a gate made by a prefix /24../32
    };
    std::vector<GateLength> gate_lengths;
    gate_lengths.reserve(entries.size());
    std::vector<uint8_t> short_lengths, long_lengths;
    std::vector<Entry> up_to_32;
    for (const Entry& e : entries) {
        const uint8_t len = e.cidr->prefixlen;
        const uint32_t top = host_v4(e.cidr->addr);
        if (len > 32 || len < 24) {
            CompiledListSet::Prefix prefix{key_of(len, e.cidr->addr.data(), 16), {}};
            prefix.value.hit = e.hit;
            hashed.push_back({prefix, e.rank});
            (len > 32 ? long_lengths : short_lengths).push_back(len);
        }
        if (len > 32) {
            gate_lengths.push_back({top, len});
        } else {
            up_to_32.push_back(e);
            if (len >= 24) {
                for (uint64_t t = top; t < uint64_t{top} + (uint64_t{1} << (32 - len)); ++t) {
                    gate_lengths.push_back({static_cast<uint32_t>(t), 0});
                }
            }
        }
    }
    std::sort(gate_lengths.begin(), gate_lengths.end(), [](const GateLength& a, const GateLength& b) {
        return std::tie(a.top, b.prefixlen) < std::tie(b.top, a.prefixlen);  // longest length first
    });
    std::vector<uint32_t> tops;
    std::vector<list_value> gates;
    for (const GateLength& g : gate_lengths) {
        if (tops.empty() || tops.back() != g.top) {
            tops.push_back(g.top);
            gates.push_back({});
        }
        list_value& gate = gates.back();
        if (g.prefixlen == 0 || gate.count == FENCE_LIST_GATE_OVERFLOW) continue;
        if (gate.count && gate.lengths[gate.count - 1] == g.prefixlen) continue;
        if (gate.count == FENCE_LIST_GATE_LENGTHS) {
            gate.count = FENCE_LIST_GATE_OVERFLOW;
            continue;
        }
        gate.lengths[gate.count++] = g.prefixlen;
    }
    sort_for_painting(up_to_32);
    for (const Entry& e : up_to_32) {
        const uint32_t top = host_v4(e.cidr->addr);
        const uint64_t end = uint64_t{top} + (uint64_t{1} << (32 - e.cidr->prefixlen));
        for (auto it = std::lower_bound(tops.begin(), tops.end(), top); it != tops.end() && *it < end; ++it) {
            gates[static_cast<size_t>(it - tops.begin())].hit = e.hit;
        }
    }
    for (size_t i = 0; i < tops.size(); ++i) {
        const uint8_t top_bytes[4] = {static_cast<uint8_t>(tops[i] >> 24), static_cast<uint8_t>(tops[i] >> 16),
                                      static_cast<uint8_t>(tops[i] >> 8), static_cast<uint8_t>(tops[i])};
        hashed.push_back({{key_of(FENCE_LIST_KEY_GATE, top_bytes, 4), gates[i]}, 0});
    }
    for (auto [lengths, at] : {std::pair{&short_lengths, size_t{FENCE_LIST_V6_SHORT}},
                               std::pair{&long_lengths, size_t{FENCE_LIST_V6_LONG}}}) {
        std::sort(lengths->begin(), lengths->end(), std::greater<>());
        lengths->erase(std::unique(lengths->begin(), lengths->end()), lengths->end());
        set.cells[at] = lengths->size();
        std::copy(lengths->begin(), lengths->end(), set.cells.begin() + static_cast<std::ptrdiff_t>(at + 1));
    }
}

list_key masked_key(uint32_t key_prefixlen, const std::array<uint8_t, 16>& addr, uint32_t prefixlen) {
    list_key key{};
    key.prefixlen = key_prefixlen;
    for (uint32_t bit = 0; bit < prefixlen; bit += 8) {
        const uint32_t keep = std::min<uint32_t>(8, prefixlen - bit);
        key.addr[bit / 8] = static_cast<uint8_t>(addr[bit / 8] & (0xff00 >> keep));
    }
    return key;
}

const list_value* find(const CompiledListSet& set, const list_key& key) {
    const auto found = std::lower_bound(
        set.prefixes.begin(), set.prefixes.end(), key,
        [](const CompiledListSet::Prefix& p, const list_key& k) { return list_key_before(p.key, k); });
    if (found == set.prefixes.end() || list_key_before(key, found->key)) return nullptr;
    return &found->value;
}

}  // namespace

bool list_key_before(const list_key& a, const list_key& b) {
    if (a.prefixlen != b.prefixlen) return a.prefixlen < b.prefixlen;
    return std::memcmp(a.addr, b.addr, sizeof a.addr) < 0;
}

CompiledListSet compile_list_set(const std::vector<ListToCompile>& lists) {
    CompiledListSet set;
    set.cells.assign(FENCE_LIST_V4_BLOCKS_START, 0);
    std::vector<Entry> v4, v6;
    for (const ListToCompile& list : lists) {
        for (const Cidr& c : *list.v4) v4.push_back({&c, list.rank, FENCE_LIST_HIT(list.index, c.prefixlen)});
        for (const Cidr& c : *list.v6) v6.push_back({&c, list.rank, FENCE_LIST_HIT(list.index, c.prefixlen)});
    }
    std::vector<std::pair<CompiledListSet::Prefix, uint32_t>> hashed;  // with the rank of its list
    hashed.reserve(v4.size() + 2 * v6.size());  // a v6 prefix may bring its gate
    compile_v4(std::move(v4), set, hashed);
    compile_v6(std::move(v6), set, hashed);
    // One entry a key: the winning rank's.
    std::sort(hashed.begin(), hashed.end(), [](const auto& a, const auto& b) {
        if (list_key_before(a.first.key, b.first.key)) return true;
        if (list_key_before(b.first.key, a.first.key)) return false;
        return a.second < b.second;
    });
    set.prefixes.reserve(hashed.size());
    for (const auto& [prefix, rank] : hashed) {
        if (!set.prefixes.empty() && !list_key_before(set.prefixes.back().key, prefix.key)) continue;
        set.prefixes.push_back(prefix);
    }
    return set;
}

uint32_t lookup_compiled(const CompiledListSet& set, const Cidr& address) {
    if (address.family == Family::V4) {
        const uint32_t addr = host_v4(address.addr);
        const uint64_t root = set.cells[addr >> 16];
        if (!(root & FENCE_LIST_BLOCK)) return static_cast<uint32_t>(root);
        const uint64_t cell = set.cells[static_cast<uint32_t>(root) + ((addr >> 8) & 0xff)];
        for (uint32_t len = 32; len > 24; --len) {
            if (!(cell >> (FENCE_LIST_LONGER_SHIFT + len - 25) & 1)) continue;
            if (const list_value* v = find(set, masked_key(FENCE_LIST_KEY_V4 | len, address.addr, len))) return v->hit;
        }
        return static_cast<uint32_t>(cell);
    }
    const auto by_lengths = [&](const uint8_t* lengths, size_t count) -> uint32_t {
        for (size_t i = 0; i < count; ++i) {
            if (const list_value* v = find(set, masked_key(lengths[i], address.addr, lengths[i]))) return v->hit;
        }
        return 0;
    };
    const auto by_cells = [&](size_t at) {
        std::vector<uint8_t> lengths;
        for (size_t i = 1; i <= set.cells[at]; ++i) lengths.push_back(static_cast<uint8_t>(set.cells[at + i]));
        return by_lengths(lengths.data(), lengths.size());
    };
    const list_value* gate = find(set, masked_key(FENCE_LIST_KEY_GATE, address.addr, 32));
    if (!gate) return by_cells(FENCE_LIST_V6_SHORT);
    const uint32_t hit =
        gate->count == FENCE_LIST_GATE_OVERFLOW ? by_cells(FENCE_LIST_V6_LONG) : by_lengths(gate->lengths, gate->count);
    return hit ? hit : gate->hit;
}

ListSetMaps create_list_set_maps(const CompiledListSet& set) {
    ListSetMaps maps;
    LIBBPF_OPTS(bpf_map_create_opts, cells_opts, .map_flags = BPF_F_MMAPABLE | BPF_F_INNER_MAP);
    const int cells_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "list_v4_cells", sizeof(uint32_t), sizeof(uint64_t),
                                        static_cast<uint32_t>(set.cells.size()), &cells_opts);
    if (cells_fd < 0) throw RuntimeError(describe_errno("create the lists' IPv4 table", errno));
    maps.v4_cells = UniqueFd(cells_fd);
    const size_t bytes = set.cells.size() * sizeof(uint64_t);
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t mapped = (bytes + page - 1) / page * page;
    void* cells = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, cells_fd, 0);
    if (cells == MAP_FAILED) throw RuntimeError(describe_errno("map the lists' IPv4 table", errno));
    std::memcpy(cells, set.cells.data(), bytes);
    munmap(cells, mapped);

    const int prefixes_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "list_prefixes", sizeof(list_key), sizeof(list_value),
                                           std::max<uint32_t>(1, static_cast<uint32_t>(set.prefixes.size())), nullptr);
    if (prefixes_fd < 0) throw RuntimeError(describe_errno("create the lists' prefix hash", errno));
    maps.prefixes = UniqueFd(prefixes_fd);
    constexpr size_t kBatch = 65536;
    std::vector<list_key> keys;
    std::vector<list_value> values;
    for (size_t start = 0; start < set.prefixes.size(); start += kBatch) {
        const size_t end = std::min(set.prefixes.size(), start + kBatch);
        keys.clear();
        values.clear();
        for (size_t i = start; i < end; ++i) {
            keys.push_back(set.prefixes[i].key);
            values.push_back(set.prefixes[i].value);
        }
        uint32_t count = static_cast<uint32_t>(keys.size());
        if (bpf_map_update_batch(prefixes_fd, keys.data(), values.data(), &count, nullptr) != 0) {
            throw RuntimeError(describe_errno("fill the lists' prefix hash", errno));
        }
    }
    return maps;
}

void wait_for_data_path_readers() {
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0) {
        throw RuntimeError(describe_errno("wait for the data path to leave the old list set (membarrier)", errno));
    }
}

}  // namespace smtpfence
