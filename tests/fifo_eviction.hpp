// fifo_eviction.hpp: a user-written Eviction policy for the tests (first in,
// first out; hits change nothing), proving a policy outside the library works.
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

}  // namespace stowage_test
