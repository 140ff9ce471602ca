#include "seqrec/interrupt.hpp"

#include <atomic>
#include <string>

namespace seqrec {

namespace {
std::atomic<bool> g_interrupt{false};
}  // namespace

void request_interrupt() noexcept {
  g_interrupt.store(true, std::memory_order_relaxed);
}

void clear_interrupt() noexcept {
  g_interrupt.store(false, std::memory_order_relaxed);
}

bool interrupt_requested() noexcept {
  return g_interrupt.load(std::memory_order_relaxed);
}

void check_interrupt(const char* what) {
  if (interrupt_requested()) throw Interrupted(std::string(what) + " interrupted");
}

}  // namespace seqrec
