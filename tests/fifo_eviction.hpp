// fifo_eviction.hpp: user-written Eviction policies for the tests, proving a
// policy outside the library works: FifoEviction (first in, first out; hits
// change nothing) on Boost.Intrusive, and LinkedLifoEviction (last in, first
// out), which links its entries itself through a hook that knows the entry
// type (hook_for<Entry>), with no Boost.Intrusive and no casts.
#pragma once

#include <string_view>

#include <boost/intrusive/list.hpp>

namespace stowage_test {

struct FifoEviction {
  static constexpr std::string_view name = "fifo";
  using hook = boost::intrusive::list_member_hook<>;
  template <class Entry>
  class queue {
   public:
    void insert(Entry& e) { list_.push_back(e); }
    void touch(Entry&) {}
    void erase(Entry& e) { list_.erase(list_.iterator_to(e)); }
    Entry* victim() { return list_.empty() ? nullptr : &list_.front(); }

   private:
    boost::intrusive::list<Entry, boost::intrusive::member_hook<Entry, hook, &Entry::eviction_hook>> list_;
  };
};

// Evicts the newest entry first (a policy only a test wants), on a doubly
// linked list of its own: each entry's hook holds typed neighbour pointers.
struct LinkedLifoEviction {
  static constexpr std::string_view name = "linked-lifo";
  template <class Entry>
  struct hook_for {
    Entry* prev = nullptr;
    Entry* next = nullptr;
  };
  template <class Entry>
  class queue {
   public:
    void insert(Entry& e) {
      e.eviction_hook.prev = nullptr;
      e.eviction_hook.next = head_;
      if (head_ != nullptr) head_->eviction_hook.prev = &e;
      head_ = &e;
    }
    void touch(Entry&) {}
    void erase(Entry& e) {
      auto& h = e.eviction_hook;
      if (h.prev != nullptr)
        h.prev->eviction_hook.next = h.next;
      else
        head_ = h.next;
      if (h.next != nullptr) h.next->eviction_hook.prev = h.prev;
      h.prev = h.next = nullptr;
    }
    Entry* victim() { return head_; }

   private:
    Entry* head_ = nullptr;
  };
};

}  // namespace stowage_test
