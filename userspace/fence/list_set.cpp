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

uint32_t host_v4(const Cidr& cidr) {
    return uint32_t{cidr.addr[0]} << 24 | uint32_t{cidr.addr[1]} << 16 | uint32_t{cidr.addr[2]} << 8 | cidr.addr[3];
}

struct V4Entry {
    uint32_t addr;
    uint8_t prefixlen;
    uint32_t rank;
    uint32_t hit;
};

// The 16-8-8 table: shorter prefixes painted first, so that a longer one
// overwrites the part of them it covers; at the same prefix the winning rank
// is painted last. A block of 256 cells starts as a copy of the cell it
// refines, so what a shorter prefix painted stays true inside it.
void paint_v4(std::vector<V4Entry>& entries, std::vector<uint32_t>& cells) {
    std::sort(entries.begin(), entries.end(), [](const V4Entry& a, const V4Entry& b) {
        return std::tie(a.prefixlen, b.rank) < std::tie(b.prefixlen, a.rank);
    });
    const auto refine = [&cells](size_t cell) {
        if (!(cells[cell] & FENCE_LIST_BLOCK)) {
            const uint32_t start = static_cast<uint32_t>(cells.size());
            cells.resize(cells.size() + 256, cells[cell]);
            cells[cell] = FENCE_LIST_BLOCK | start;
        }
        return cells[cell] & ~FENCE_LIST_BLOCK;
    };
    for (const V4Entry& e : entries) {
        size_t first;
        size_t count;
        if (e.prefixlen <= 16) {
            first = e.addr >> 16;
            count = size_t{1} << (16 - e.prefixlen);
        } else if (e.prefixlen <= 24) {
            first = refine(e.addr >> 16) + ((e.addr >> 8) & 0xff);
            count = size_t{1} << (24 - e.prefixlen);
        } else {
            const uint32_t block = refine(e.addr >> 16);
            first = refine(block + ((e.addr >> 8) & 0xff)) + (e.addr & 0xff);
            count = size_t{1} << (32 - e.prefixlen);
        }
        // Only longer prefixes make blocks, and they come later: a painted
        // cell never holds one.
        std::fill_n(cells.begin() + static_cast<std::ptrdiff_t>(first), count, e.hit);
    }
}

bool v6_key_before(const list_key_v6& a, const list_key_v6& b) {
    if (a.prefixlen != b.prefixlen) return a.prefixlen > b.prefixlen;
    return std::memcmp(a.addr, b.addr, sizeof a.addr) < 0;
}

}  // namespace

CompiledListSet compile_list_set(const std::vector<ListToCompile>& lists) {
    CompiledListSet set;
    set.cells.assign(FENCE_LIST_V4_CELLS_START, 0);

    size_t v4_total = 0, v6_total = 0;
    for (const ListToCompile& list : lists) {
        v4_total += list.v4->size();
        v6_total += list.v6->size();
    }
    std::vector<V4Entry> v4;
    v4.reserve(v4_total);
    struct Ranked {
        CompiledListSet::V6Entry entry;
        uint32_t rank;
    };
    std::vector<Ranked> v6;
    v6.reserve(v6_total);
    for (const ListToCompile& list : lists) {
        for (const Cidr& cidr : *list.v4) {
            v4.push_back({host_v4(cidr), cidr.prefixlen, list.rank, FENCE_LIST_HIT(list.index, cidr.prefixlen)});
        }
        for (const Cidr& cidr : *list.v6) {
            Ranked r{};
            r.entry.key.prefixlen = cidr.prefixlen;
            std::memcpy(r.entry.key.addr, cidr.addr.data(), 16);
            r.entry.hit = FENCE_LIST_HIT(list.index, cidr.prefixlen);
            r.rank = list.rank;
            v6.push_back(r);
        }
    }
    paint_v4(v4, set.cells);

    // Longest length first (the order the data path tries them), then by
    // prefix, the winning rank first.
    std::sort(v6.begin(), v6.end(), [](const Ranked& a, const Ranked& b) {
        if (v6_key_before(a.entry.key, b.entry.key)) return true;
        if (v6_key_before(b.entry.key, a.entry.key)) return false;
        return a.rank < b.rank;
    });
    std::vector<uint32_t> lengths;
    set.v6.reserve(v6.size());
    for (const Ranked& r : v6) {
        const bool same_prefix = !set.v6.empty() && set.v6.back().key.prefixlen == r.entry.key.prefixlen &&
                                 std::memcmp(set.v6.back().key.addr, r.entry.key.addr, 16) == 0;
        if (same_prefix) continue;  // a lower rank came first
        if (lengths.empty() || lengths.back() != r.entry.key.prefixlen) lengths.push_back(r.entry.key.prefixlen);
        set.v6.push_back(r.entry);
    }
    set.cells[FENCE_LIST_V6_LENGTHS] = static_cast<uint32_t>(lengths.size());
    std::copy(lengths.begin(), lengths.end(), set.cells.begin() + FENCE_LIST_V6_LENGTHS + 1);
    return set;
}

uint32_t lookup_compiled(const CompiledListSet& set, const Cidr& address) {
    if (address.family == Family::V4) {
        const uint32_t addr = host_v4(address);
        uint32_t value = set.cells[addr >> 16];
        if (value & FENCE_LIST_BLOCK) value = set.cells[(value & ~FENCE_LIST_BLOCK) + ((addr >> 8) & 0xff)];
        if (value & FENCE_LIST_BLOCK) value = set.cells[(value & ~FENCE_LIST_BLOCK) + (addr & 0xff)];
        return value;
    }
    const uint32_t lengths = set.cells[FENCE_LIST_V6_LENGTHS];
    for (uint32_t i = 1; i <= lengths; ++i) {
        const uint32_t prefixlen = set.cells[FENCE_LIST_V6_LENGTHS + i];
        list_key_v6 key{};
        key.prefixlen = prefixlen;
        for (uint32_t bit = 0; bit < prefixlen; bit += 8) {
            const uint32_t keep = std::min<uint32_t>(8, prefixlen - bit);
            key.addr[bit / 8] = static_cast<uint8_t>(address.addr[bit / 8] & (0xff00 >> keep));
        }
        const auto found = std::lower_bound(
            set.v6.begin(), set.v6.end(), key,
            [](const CompiledListSet::V6Entry& e, const list_key_v6& k) { return v6_key_before(e.key, k); });
        if (found != set.v6.end() && !v6_key_before(key, found->key)) return found->hit;
    }
    return 0;
}

ListSetMaps create_list_set_maps(const CompiledListSet& set) {
    ListSetMaps maps;
    LIBBPF_OPTS(bpf_map_create_opts, cells_opts, .map_flags = BPF_F_MMAPABLE | BPF_F_INNER_MAP);
    const int cells_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "list_v4_cells", sizeof(uint32_t), sizeof(uint32_t),
                                        static_cast<uint32_t>(set.cells.size()), &cells_opts);
    if (cells_fd < 0) throw RuntimeError(describe_errno("create the lists' IPv4 table", errno));
    maps.v4_cells = UniqueFd(cells_fd);
    // An array map's elements are 8 bytes apart whatever their value size
    // (the kernel rounds it up), in the mmaped view too.
    constexpr size_t kStride = 8;
    const size_t bytes = set.cells.size() * kStride;
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t mapped = (bytes + page - 1) / page * page;
    void* cells = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, cells_fd, 0);
    if (cells == MAP_FAILED) throw RuntimeError(describe_errno("map the lists' IPv4 table", errno));
    auto* out = static_cast<uint8_t*>(cells);
    for (size_t i = 0; i < set.cells.size(); ++i) std::memcpy(out + i * kStride, &set.cells[i], sizeof set.cells[i]);
    munmap(cells, mapped);

    const int prefixes_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "list_v6_prefixes", sizeof(list_key_v6),
                                           sizeof(uint32_t), std::max<uint32_t>(1, set.v6.size()), nullptr);
    if (prefixes_fd < 0) throw RuntimeError(describe_errno("create the lists' IPv6 table", errno));
    maps.v6_prefixes = UniqueFd(prefixes_fd);
    constexpr size_t kBatch = 65536;
    std::vector<list_key_v6> keys;
    std::vector<uint32_t> hits;
    for (size_t start = 0; start < set.v6.size(); start += kBatch) {
        const size_t end = std::min(set.v6.size(), start + kBatch);
        keys.clear();
        hits.clear();
        for (size_t i = start; i < end; ++i) {
            keys.push_back(set.v6[i].key);
            hits.push_back(set.v6[i].hit);
        }
        uint32_t count = static_cast<uint32_t>(keys.size());
        if (bpf_map_update_batch(prefixes_fd, keys.data(), hits.data(), &count, nullptr) != 0) {
            throw RuntimeError(describe_errno("fill the lists' IPv6 table", errno));
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
