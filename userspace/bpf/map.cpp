#include "bpf/map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>

#include "base/errors.h"
#include "bpf/obj_info.h"

namespace smtpfence {

MapRef::MapRef(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {
    max_entries_ = map_info(fd_.get(), "map " + name_).max_entries;
}

bool MapRef::lookup(const void* key, void* value) const {
    if (bpf_map_lookup_elem(fd_.get(), key, value) == 0) return true;
    if (errno == ENOENT) return false;
    throw RuntimeError(describe_errno("read map " + name_, errno));
}

void MapRef::update(const void* key, const void* value, uint64_t flags) const {
    if (bpf_map_update_elem(fd_.get(), key, value, flags) != 0) {
        int err = errno;
        if (err == ENOSPC || err == E2BIG) {
            throw RuntimeError("map " + name_ + " is full (" + std::to_string(max_entries_) +
                               " entries): remove rules, or recreate the maps with a larger `attach --max-rules`");
        }
        throw RuntimeError(describe_errno("write map " + name_, err));
    }
}

bool MapRef::erase(const void* key) const {
    if (bpf_map_delete_elem(fd_.get(), key) == 0) return true;
    if (errno == ENOENT) return false;
    throw RuntimeError(describe_errno("delete from map " + name_, errno));
}

std::vector<std::vector<uint8_t>> MapRef::keys(size_t key_size) const {
    std::vector<std::vector<uint8_t>> out;
    std::vector<uint8_t> next(key_size);
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd_.get(), prev, next.data()) == 0) {
        out.push_back(next);
        prev = out.back().data();
    }
    if (errno != ENOENT) throw RuntimeError(describe_errno("iterate map " + name_, errno));
    return out;
}

unsigned possible_cpus() {
    static const unsigned n = [] {
        int cpus = libbpf_num_possible_cpus();
        if (cpus <= 0) throw RuntimeError(describe_errno("count possible CPUs", -cpus));
        return static_cast<unsigned>(cpus);
    }();
    return n;
}

}  // namespace smtpfence
