#include "log/segment_index.h"

#include "util/coding.h"

namespace streamkit::log {
namespace {

void Encode(uint8_t* p, const OffsetEntry& e) {
  EncodeFixed32(p, e.rel_offset);
  EncodeFixed32(p + 4, e.position);
}
void Decode(const uint8_t* p, OffsetEntry* e) {
  e->rel_offset = DecodeFixed32(p);
  e->position = DecodeFixed32(p + 4);
}
bool Increasing(const OffsetEntry& a, const OffsetEntry& b) {
  return b.rel_offset > a.rel_offset && b.position > a.position;
}

void Encode(uint8_t* p, const TimeEntry& e) {
  EncodeFixed64(p, uint64_t(e.timestamp));
  EncodeFixed32(p + 8, e.rel_offset);
}
void Decode(const uint8_t* p, TimeEntry* e) {
  e->timestamp = int64_t(DecodeFixed64(p));
  e->rel_offset = DecodeFixed32(p + 8);
}
bool Increasing(const TimeEntry& a, const TimeEntry& b) {
  return b.timestamp >= a.timestamp && b.rel_offset > a.rel_offset;
}

}  // namespace

template <class E>
Status SparseIndex<E>::Open(io::Io& io, const std::string& path) {
  io_ = &io;
  path_ = path;
  SK_ASSIGN_OR_RETURN(auto file, io.Open(path, io::OpenMode::kCreate));
  entries_.clear();
  in_file_ = 0;
  shrink_ = false;
  SK_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size % E::kSize != 0)
    return Status::Corruption(fmt::format("{}: {} bytes is not a whole number of {}-byte entries",
                                          path, size, E::kSize));
  Bytes buf(size);
  SK_ASSIGN_OR_RETURN(size_t got, file->ReadAt(buf.data(), buf.size(), 0));
  if (got != size) return Status::Corruption(fmt::format("{}: short read", path));
  entries_.resize(size / E::kSize);
  for (size_t i = 0; i < entries_.size(); i++) {
    Decode(buf.data() + i * E::kSize, &entries_[i]);
    if (i > 0 && !Increasing(entries_[i - 1], entries_[i]))
      return Status::Corruption(fmt::format("{}: entry {} does not increase", path, i));
  }
  in_file_ = entries_.size();
  return Status::OK();
}

template <class E>
Status SparseIndex<E>::Reset() {
  entries_.clear();
  in_file_ = 0;
  shrink_ = false;
  SK_ASSIGN_OR_RETURN(auto file, io_->Open(path_, io::OpenMode::kCreate));
  return file->Truncate(0);
}

template <class E>
void SparseIndex<E>::KeepFirst(size_t n) {
  if (n >= entries_.size()) return;
  entries_.resize(n);
  if (in_file_ > n) {
    in_file_ = n;
    shrink_ = true;
  }
}

template <class E>
Status SparseIndex<E>::Flush() {
  if (!shrink_ && in_file_ == entries_.size()) return Status::OK();
  SK_ASSIGN_OR_RETURN(auto file, io_->Open(path_, io::OpenMode::kCreate));
  if (shrink_) {
    SK_TRY(file->Truncate(in_file_ * E::kSize));
    shrink_ = false;
  }
  if (in_file_ == entries_.size()) return Status::OK();
  size_t n = entries_.size() - in_file_;
  Bytes buf(n * E::kSize);
  for (size_t i = 0; i < n; i++) Encode(buf.data() + i * E::kSize, entries_[in_file_ + i]);
  SK_TRY(file->WriteAt(buf.data(), buf.size(), in_file_ * E::kSize));
  in_file_ = entries_.size();
  return Status::OK();
}

template <class E>
Status SparseIndex<E>::Sync() {
  SK_TRY(Flush());
  SK_ASSIGN_OR_RETURN(auto file, io_->Open(path_, io::OpenMode::kCreate));
  return file->DataSync();
}

template class SparseIndex<OffsetEntry>;
template class SparseIndex<TimeEntry>;

}  // namespace streamkit::log
