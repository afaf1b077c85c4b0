// Large CPU outputs of genfast's kernels come from a small cache of freed blocks.
//
// A fresh 32 MB tensor is above glibc's largest mmap threshold, so every call maps new memory and
// pays a page fault and the kernel's zeroing per page before the first write: for instance norm at
// (4, 32, 256, 256) that is ~1.5 ms of a ~4 ms forward, more than the arithmetic. Outputs of the same
// size recur (the same layer, every step), so freed blocks are kept here by size and handed out
// again, already mapped (the idea of PyTorch's CUDA caching allocator, for genfast's large CPU outputs
// only). The cache holds at most GENFAST_CPU_CACHE_MB megabytes of free blocks (default 512; 0 turns
// it off); genfast.empty_cache() returns them to the system. Blocks in use are ordinary tensor storage:
// they can be resized, shared, pickled, viewed from NumPy.
#pragma once

#include <ATen/EmptyTensor.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/cpu_memory.h"

namespace genfast::cpu {

class OutputCache final : public c10::Allocator {
 public:
  static constexpr size_t kMinBytes = size_t(4) << 20;  // smaller blocks come from the default allocator

  static OutputCache& instance() {
    static OutputCache* cache = new OutputCache();  // never destroyed: tensors may outlive static destructors
    return *cache;
  }

  c10::DataPtr allocate(size_t n) override {
    if (n < kMinBytes || limit_ == 0) return c10::GetDefaultCPUAllocator()->allocate(n);
    return take(n);
  }

  // A block of n bytes from the cache whatever its size (for per-call scratch that recurs, such as
  // re-packed weights); the default allocator when the cache is off.
  c10::DataPtr take(size_t n) {
    if (limit_ == 0 || n == 0) return c10::GetDefaultCPUAllocator()->allocate(n);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      auto it = free_.find(n);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_ -= n;
      }
    }
    if (p == nullptr) {
      p = c10::alloc_cpu(n);
      advise_huge_pages(p, n);
    }
    return {p, new Block{p, n}, &OutputCache::release, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  // Returns the cached free blocks to the system; the number of bytes released.
  size_t empty() {
    std::lock_guard<std::mutex> guard(mutex_);
    for (auto& [n, blocks] : free_)
      for (void* p : blocks) c10::free_cpu(p);
    free_.clear();
    const size_t released = cached_;
    cached_ = 0;
    return released;
  }

  size_t cached_bytes() {
    std::lock_guard<std::mutex> guard(mutex_);
    return cached_;
  }

 private:
  struct Block {
    void* ptr;
    size_t n;
  };

  OutputCache() {
    const char* env = std::getenv("GENFAST_CPU_CACHE_MB");
    limit_ = (env != nullptr ? static_cast<size_t>(std::max(0LL, std::atoll(env))) : size_t(512)) << 20;
  }

  static void release(void* ctx) {
    auto* block = static_cast<Block*>(ctx);
    instance().put(block->ptr, block->n);
    delete block;
  }

  void put(void* p, size_t n) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (cached_ + n <= limit_) {
        free_[n].push_back(p);
        cached_ += n;
        return;
      }
    }
    c10::free_cpu(p);
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  size_t limit_ = 0;
};

// at::empty_like(x) (same strides when x is dense, else x's suggested memory format), from the cache.
inline at::Tensor empty_like_cached(const at::Tensor& x) {
  const c10::DispatchKeySet ks(c10::DispatchKey::CPU);
  if (x.is_non_overlapping_and_dense()) {
    return at::detail::empty_strided_generic(x.sizes(), x.strides(), &OutputCache::instance(), ks,
                                             x.scalar_type());
  }
  return at::detail::empty_generic(x.sizes(), &OutputCache::instance(), ks, x.scalar_type(),
                                   x.suggest_memory_format());
}

// Scratch tensors of any size from the cache: a kernel that re-packs the same weights on every call
// gets the same, already mapped, memory back instead of faulting in fresh pages each time.
class ScratchAllocator final : public c10::Allocator {
 public:
  static ScratchAllocator& instance() {
    static ScratchAllocator* a = new ScratchAllocator();
    return *a;
  }
  c10::DataPtr allocate(size_t n) override { return OutputCache::instance().take(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
};

inline at::Tensor empty_scratch(at::IntArrayRef sizes, at::ScalarType dtype) {
  return at::detail::empty_generic(sizes, &ScratchAllocator::instance(), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   dtype, std::nullopt);
}

}  // namespace genfast::cpu
