// A BPF map reached through a pinned fd, with errors that say which map
// failed and what to do, and typed access for fixed-size keys and values.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace smtpfence {

class MapRef {
public:
    MapRef() = default;
    MapRef(UniqueFd fd, std::string name);

    int fd() const { return fd_.get(); }
    bool is_open() const { return fd_.get() >= 0; }
    const std::string& name() const { return name_; }
    uint32_t max_entries() const { return max_entries_; }

    // Returns false when the key is absent; throws on any other failure.
    bool lookup(const void* key, void* value) const;
    void update(const void* key, const void* value, uint64_t flags = 0) const;
    // Returns false when the key was absent.
    bool erase(const void* key) const;
    // All keys, in the map's iteration order; `key_size` bytes each.
    std::vector<std::vector<uint8_t>> keys(size_t key_size) const;

    template <typename V, typename K>
    std::optional<V> find(const K& key) const {
        V value{};
        if (!lookup(&key, &value)) return std::nullopt;
        return value;
    }
    template <typename K>
    std::vector<K> keys_of() const {
        std::vector<K> out;
        for (const auto& raw : keys(sizeof(K))) {
            K key;
            std::memcpy(&key, raw.data(), sizeof key);
            out.push_back(key);
        }
        return out;
    }

private:
    UniqueFd fd_;
    std::string name_;
    uint32_t max_entries_ = 0;
};

// Number of possible CPUs: the element count of a per-CPU map value.
unsigned possible_cpus();

// The per-CPU copies of `key`'s value in a per-CPU map, added up field by
// field. `T` must be made of __u64 counters only (both counter structs of
// the ABI are); an absent key sums to zero.
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

}  // namespace smtpfence
