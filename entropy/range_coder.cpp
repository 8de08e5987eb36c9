// Range coder of lnc's entropy-coding core (format: docs/range_coder.md).
//
// A byte-oriented range coder (G. N. N. Martin, "Range encoding", 1979) with a 32-bit range,
// a 64-bit low and carry propagation into the bytes already written, driven by the
// quantised CDF tables of CompressAI / tensorflow-compression (Ballé et al., 2018,
// arXiv:1802.01436): one table per index, the last symbol of each table an escape followed
// by an Elias-gamma bypass code, so every int32 value is codable.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <queue>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace {

constexpr uint32_t kTop = 1u << 24;      // the range is renormalised to stay >= kTop
constexpr int kMaxPrecision = 16;        // CDF precision, bits
constexpr int kBypassChunk = 16;         // bits per bypass chunk of the gamma mantissa
constexpr int kMaxGammaExponent = 33;    // raw + 1 < 2^34 for any int32 symbol and offset
constexpr uint32_t kMaxPadding = 4;      // zero bytes a valid stream makes the decoder read past its end
constexpr int kLutBits = 8;              // decoder lookup: first candidate symbol per 2^8 slice of the CDF
constexpr size_t kMaxBytesPerSymbol = 2; // range >= 2^24, freq >= 1, precision <= 16: at most 2 bytes out
constexpr size_t kMaxBytesPerEscape = kMaxBytesPerSymbol * (kMaxGammaExponent + 4);  // unary + 3 chunks

// Raised for malformed streams; translated into lnc.entropy.errors.BitstreamError.
struct BitstreamFault : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One validated CDF table, packed so that coding a symbol touches one cache line of metadata.
struct Table {
  const int32_t* cdf;
  int32_t max_value;  // the escape symbol, cdf_length - 2
  int32_t offset;
};

// Validated view of (cdfs, cdf_lengths, offsets, precision); the arrays must outlive it.
struct Tables {
  std::vector<Table> tables;
  int precision = kMaxPrecision;
};

using I32Array = py::array_t<int32_t, py::array::c_style>;

Tables make_tables(const I32Array& cdfs, const I32Array& lengths, const I32Array& offsets,
                   int precision) {
  if (precision < 1 || precision > kMaxPrecision)
    throw std::invalid_argument("precision must be in 1.." + std::to_string(kMaxPrecision) +
                                ", got " + std::to_string(precision));
  if (cdfs.ndim() != 2) throw std::invalid_argument("cdfs must be 2-D [n_tables, max_length]");
  if (lengths.ndim() != 1 || offsets.ndim() != 1)
    throw std::invalid_argument("cdf_lengths and offsets must be 1-D");
  const int64_t count = cdfs.shape(0), stride = cdfs.shape(1);
  if (count < 1) throw std::invalid_argument("cdfs holds no table");
  if (lengths.shape(0) != count || offsets.shape(0) != count)
    throw std::invalid_argument("cdfs has " + std::to_string(count) + " tables but cdf_lengths has " +
                                std::to_string(lengths.shape(0)) + " and offsets " +
                                std::to_string(offsets.shape(0)) + " entries");
  const int32_t total = int32_t(1) << precision;
  Tables out;
  out.precision = precision;
  out.tables.resize(size_t(count));
  for (int64_t i = 0; i < count; ++i) {
    const int32_t length = lengths.data()[i];
    const std::string table = "table " + std::to_string(i);
    if (length < 2 || length > stride)
      throw std::invalid_argument(table + ": cdf_length " + std::to_string(length) +
                                  " outside 2.." + std::to_string(stride));
    const int32_t* cdf = cdfs.data() + i * stride;
    if (cdf[0] != 0) throw std::invalid_argument(table + ": cdf[0] must be 0");
    if (cdf[length - 1] != total)
      throw std::invalid_argument(table + ": cdf[length-1] must be 1 << precision = " +
                                  std::to_string(total) + ", got " + std::to_string(cdf[length - 1]));
    for (int32_t s = 0; s + 1 < length; ++s)
      if (cdf[s + 1] < cdf[s])
        throw std::invalid_argument(table + ": cdf decreases at entry " + std::to_string(s + 1));
    out.tables[size_t(i)] = Table{cdf, length - 2, offsets.data()[i]};
  }
  return out;
}

[[noreturn]] void bad_index(size_t position, int32_t index, size_t count) {
  throw std::invalid_argument("indexes[" + std::to_string(position) + "] = " + std::to_string(index) +
                              " outside 0.." + std::to_string(count - 1));
}

// Escape payload: value < 0 -> 2|value|-1 (odd), value >= max_value -> 2(value-max_value) (even).
inline uint64_t escape_raw(int64_t value, int32_t max_value) {
  return value < 0 ? uint64_t(-2 * value - 1) : uint64_t(2 * (value - max_value));
}

inline int64_t escape_value(uint64_t raw, int32_t max_value) {
  return (raw & 1) ? -int64_t((raw + 1) >> 1) : int64_t(raw >> 1) + max_value;
}

class RangeEncoder {
 public:
  explicit RangeEncoder(size_t expected_bytes) : buf_(expected_bytes + 64) {}

  // Makes room for `bytes` more output bytes.
  inline void reserve(size_t bytes) {
    if (buf_.size() - pos_ < bytes) buf_.resize(2 * buf_.size() + bytes);
  }

  // Narrows the interval to [start, start + freq) out of 2^precision.
  inline void encode(uint32_t start, uint32_t freq, int precision) {
    const uint32_t r = range_ >> precision;
    low_ += uint64_t(r) * start;
    range_ = r * freq;
    if (low_ >> 32) propagate_carry();
    while (range_ < kTop) {
      buf_[pos_++] = uint8_t(low_ >> 24);
      low_ = (low_ << 8) & 0xFFFFFFFFu;
      range_ <<= 8;
    }
  }

  // Elias-gamma code of raw + 1 in bypass bits: n ones, a zero, then the n bits below the
  // leading one, in chunks of up to kBypassChunk bits from the least significant end.
  void encode_gamma(uint64_t raw) {
    const uint64_t x = raw + 1;
    const int n = 63 - __builtin_clzll(x);
    for (int i = 0; i < n; ++i) encode(1, 1, 1);
    encode(0, 1, 1);
    for (int j = 0; j < n; j += kBypassChunk) {
      const int bits = std::min(kBypassChunk, n - j);
      encode(uint32_t(x >> j) & ((1u << bits) - 1), 1, bits);
    }
  }

  // The state before a coding call, for rollback() should the call fail part-way.
  struct Checkpoint {
    size_t pos;
    uint64_t low;
    uint32_t range;
  };

  Checkpoint checkpoint() {
    mark_ = pos_;
    carried_past_mark_ = false;
    return {pos_, low_, range_};
  }

  // Returns to `c`, the latest checkpoint. The interval only shrinks, and low + range < 2^33 at
  // the checkpoint, so the bytes written before it took at most one carry since: undo that one.
  void rollback(const Checkpoint& c) {
    if (carried_past_mark_) {
      size_t i = c.pos;
      while (i > 0 && buf_[--i]-- == 0) {
      }
    }
    pos_ = c.pos;
    low_ = c.low;
    range_ = c.range;
  }

  // Writes the shortest byte string whose zero-padded value lies in the final interval.
  std::vector<uint8_t> finish() {
    for (int k = 0; k <= 4; ++k) {
      const uint64_t unit = uint64_t(1) << (32 - 8 * k);
      const uint64_t v = (low_ + unit - 1) & ~(unit - 1);
      if (v < low_ + range_) {
        low_ = v;
        if (low_ >> 32) propagate_carry();
        reserve(4);
        for (int i = 0; i < k; ++i) buf_[pos_++] = uint8_t(low_ >> (24 - 8 * i));
        break;
      }
    }
    buf_.resize(pos_);
    return std::move(buf_);
  }

 private:
  // Adds the carry out of bit 32 of low to the bytes already written. The coded value stays
  // below 1, so the carry always stops inside the buffer.
  void propagate_carry() {
    low_ &= 0xFFFFFFFFu;
    size_t i = pos_;
    while (i > 0 && ++buf_[--i] == 0) {
    }
    if (i < mark_) carried_past_mark_ = true;
  }

  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  size_t mark_ = 0;  // pos_ at the latest checkpoint
  bool carried_past_mark_ = false;
  uint64_t low_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
};

class RangeDecoder {
 public:
  RangeDecoder(const uint8_t* data, size_t size) : data_(data), size_(size) {
    for (int i = 0; i < 4; ++i) code_ = (code_ << 8) | next_byte();
  }

  // The position of the coded value in [0, 2^precision); remembers the scale for consume().
  inline uint32_t target(int precision) {
    r_ = range_ >> precision;
    const uint32_t v = code_ / r_;
    const uint32_t top = (1u << precision) - 1;
    return v < top ? v : top;  // only a corrupted stream exceeds top
  }

  inline void consume(uint32_t start, uint32_t freq) {
    code_ -= r_ * start;
    range_ = r_ * freq;
    while (range_ < kTop) {
      code_ = (code_ << 8) | next_byte();
      range_ <<= 8;
    }
  }

  inline uint32_t bits(int n) {
    const uint32_t v = target(n);
    consume(v, 1);
    return v;
  }

  uint64_t decode_gamma() {
    int n = 0;
    while (bits(1))
      if (++n > kMaxGammaExponent) throw BitstreamFault("escape code longer than any int32 value needs");
    uint64_t x = uint64_t(1) << n;
    for (int j = 0; j < n; j += kBypassChunk) x |= uint64_t(bits(std::min(kBypassChunk, n - j))) << j;
    return x - 1;
  }

  void finish() const {
    if (pos_ < size_)
      throw BitstreamFault(std::to_string(size_ - pos_) + " bytes left after the last symbol");
  }

 private:
  inline uint32_t next_byte() {
    if (pos_ < size_) return data_[pos_++];
    if (++padding_ > kMaxPadding) throw BitstreamFault("stream truncated: data exhausted");
    return 0;
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  uint32_t padding_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
  uint32_t code_ = 0;
  uint32_t r_ = 1;
};

// Codes symbols[k] with table indexes[k], k < n, onto `enc`: the coding loop of every entry point.
// Throws std::invalid_argument on a bad index or a zero-frequency symbol, after coding those before.
void encode_symbols(RangeEncoder& enc, const int32_t* symbols, const int32_t* indexes, size_t n,
                    const Tables& t) {
  const Table* tables = t.tables.data();
  const size_t count = t.tables.size();
  const int precision = t.precision;
  for (size_t k = 0; k < n; ++k) {
    const int32_t index = indexes[k];
    if (uint64_t(uint32_t(index)) >= count) bad_index(k, index, count);
    const Table& tab = tables[index];
    const int64_t value = int64_t(symbols[k]) - tab.offset;
    const bool escape = value < 0 || value >= tab.max_value;
    const int32_t s = escape ? tab.max_value : int32_t(value);
    const uint32_t start = uint32_t(tab.cdf[s]), freq = uint32_t(tab.cdf[s + 1]) - start;
    if (freq == 0)
      throw std::invalid_argument("symbols[" + std::to_string(k) + "] = " + std::to_string(symbols[k]) +
                                  " has zero probability in table " + std::to_string(index));
    enc.reserve(kMaxBytesPerSymbol);
    enc.encode(start, freq, precision);
    if (escape) {
      enc.reserve(kMaxBytesPerEscape);
      enc.encode_gamma(escape_raw(value, tab.max_value));
    }
  }
}

std::vector<uint8_t> encode_one(const int32_t* symbols, const int32_t* indexes, size_t n,
                                const Tables& t) {
  RangeEncoder enc(n);  // a byte per symbol is room enough for most streams
  encode_symbols(enc, symbols, indexes, n, t);
  return enc.finish();
}

// Per-table lookup of the first candidate symbol for each 2^(precision - lut_bits) slice.
struct DecodeLut {
  std::vector<uint32_t> first;
  int bits = 0;
  int shift = 0;

  explicit DecodeLut(const Tables& t) {
    bits = std::min(kLutBits, t.precision);
    shift = t.precision - bits;
    first.resize(t.tables.size() << bits);
    for (size_t i = 0; i < t.tables.size(); ++i) {
      const int32_t* cdf = t.tables[i].cdf;
      uint32_t s = 0;
      for (uint32_t b = 0; b < (1u << bits); ++b) {
        while (cdf[s + 1] <= int32_t(b << shift)) ++s;
        first[(i << bits) + b] = s;
      }
    }
  }
};

// Decodes n symbols of tables indexes[k] from `state` into out: the decoding loop of every entry
// point. It works on a local copy (kept in registers) and stores it back only on success, so a
// failing call (bad index, malformed data) leaves `state` as it was.
void decode_symbols(RangeDecoder& state, const int32_t* indexes, size_t n, const Tables& t,
                    const DecodeLut& lut, int32_t* out) {
  const Table* tables = t.tables.data();
  const size_t count = t.tables.size();
  const int precision = t.precision;
  const uint32_t* first = lut.first.data();
  const int lut_bits = lut.bits, lut_shift = lut.shift;
  RangeDecoder dec = state;
  for (size_t k = 0; k < n; ++k) {
    const int32_t index = indexes[k];
    if (uint64_t(uint32_t(index)) >= count) bad_index(k, index, count);
    const Table& tab = tables[index];
    const int32_t* cdf = tab.cdf;
    const uint32_t v = dec.target(precision);
    uint32_t s = first[(size_t(index) << lut_bits) + (v >> lut_shift)];
    while (uint32_t(cdf[s + 1]) <= v) ++s;
    dec.consume(uint32_t(cdf[s]), uint32_t(cdf[s + 1] - cdf[s]));
    int64_t value = int64_t(s);
    if (int32_t(s) == tab.max_value) value = escape_value(dec.decode_gamma(), tab.max_value);
    const int64_t symbol = value + tab.offset;
    if (symbol < std::numeric_limits<int32_t>::min() || symbol > std::numeric_limits<int32_t>::max())
      throw BitstreamFault("decoded value outside the int32 range");
    out[k] = int32_t(symbol);
  }
  state = dec;
}

void decode_one(const uint8_t* data, size_t size, const int32_t* indexes, size_t n,
                const Tables& t, const DecodeLut& lut, int32_t* out) {
  RangeDecoder dec(data, size);
  decode_symbols(dec, indexes, n, t, lut, out);
  dec.finish();
}

void check_pair(const I32Array& a, const I32Array& b, const char* what) {
  if (a.ndim() != 1 || b.ndim() != 1 || a.shape(0) != b.shape(0))
    throw std::invalid_argument(std::string(what) + " must be 1-D arrays of equal length");
}

// Runs job(i) for i in [0, n) on `threads` std::threads (the caller's included); rethrows the
// first failure in stream order after all have finished.
void parallel_for(size_t n, int threads, const std::function<void(size_t)>& job) {
  std::vector<std::exception_ptr> errors(n);
  std::atomic<size_t> next{0};
  auto worker = [&]() {
    for (size_t i = next++; i < n; i = next++) {
      try {
        job(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  const size_t extra = std::min(size_t(std::max(threads, 1)), std::max<size_t>(n, 1)) - 1;
  std::vector<std::thread> pool;
  pool.reserve(extra);
  for (size_t i = 0; i < extra; ++i) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

int hardware_threads() { return int(std::max(1u, std::thread::hardware_concurrency())); }

int resolve_threads(std::optional<int> threads, size_t streams) {
  if (threads && *threads < 1) throw std::invalid_argument("threads must be >= 1");
  return int(std::min(size_t(threads ? *threads : hardware_threads()), std::max<size_t>(streams, 1)));
}

py::bytes to_bytes(const std::vector<uint8_t>& v) {
  return py::bytes(reinterpret_cast<const char*>(v.data()), v.size());
}

using U8Array = py::array_t<uint8_t, py::array::c_style>;

py::bytes encode(const I32Array& symbols, const I32Array& indexes, const I32Array& cdfs,
                 const I32Array& lengths, const I32Array& offsets, int precision) {
  check_pair(symbols, indexes, "symbols and indexes");
  const Tables t = make_tables(cdfs, lengths, offsets, precision);
  std::vector<uint8_t> out;
  {
    py::gil_scoped_release release;
    out = encode_one(symbols.data(), indexes.data(), size_t(symbols.shape(0)), t);
  }
  return to_bytes(out);
}

I32Array decode(const U8Array& data, const I32Array& indexes, const I32Array& cdfs,
                const I32Array& lengths, const I32Array& offsets, int precision) {
  if (data.ndim() != 1 || indexes.ndim() != 1) throw std::invalid_argument("data and indexes must be 1-D");
  const Tables t = make_tables(cdfs, lengths, offsets, precision);
  I32Array out(indexes.shape(0));
  int32_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    const DecodeLut lut(t);
    decode_one(data.data(), size_t(data.shape(0)), indexes.data(), size_t(indexes.shape(0)), t, lut,
               dst);
  }
  return out;
}

py::list encode_streams(const std::vector<std::pair<I32Array, I32Array>>& streams, const I32Array& cdfs,
                        const I32Array& lengths, const I32Array& offsets, int precision,
                        std::optional<int> threads) {
  for (const auto& s : streams) check_pair(s.first, s.second, "symbols and indexes of each stream");
  const Tables t = make_tables(cdfs, lengths, offsets, precision);
  const int workers = resolve_threads(threads, streams.size());
  std::vector<std::vector<uint8_t>> outs(streams.size());
  {
    py::gil_scoped_release release;
    parallel_for(streams.size(), workers, [&](size_t i) {
      const auto& s = streams[i];
      outs[i] = encode_one(s.first.data(), s.second.data(), size_t(s.first.shape(0)), t);
    });
  }
  py::list result;
  for (const auto& o : outs) result.append(to_bytes(o));
  return result;
}

py::list decode_streams(const std::vector<U8Array>& datas, const std::vector<I32Array>& indexes,
                        const I32Array& cdfs, const I32Array& lengths, const I32Array& offsets,
                        int precision, std::optional<int> threads) {
  if (datas.size() != indexes.size())
    throw std::invalid_argument("got " + std::to_string(datas.size()) + " streams but " +
                                std::to_string(indexes.size()) + " index arrays");
  for (size_t i = 0; i < datas.size(); ++i)
    if (datas[i].ndim() != 1 || indexes[i].ndim() != 1)
      throw std::invalid_argument("data and indexes of each stream must be 1-D");
  const Tables t = make_tables(cdfs, lengths, offsets, precision);
  const int workers = resolve_threads(threads, datas.size());
  std::vector<I32Array> outs;
  std::vector<int32_t*> dsts;
  for (const auto& idx : indexes) {
    outs.emplace_back(idx.shape(0));
    dsts.push_back(outs.back().mutable_data());
  }
  {
    py::gil_scoped_release release;
    const DecodeLut lut(t);
    parallel_for(datas.size(), workers, [&](size_t i) {
      decode_one(datas[i].data(), size_t(datas[i].shape(0)), indexes[i].data(),
                 size_t(indexes[i].shape(0)), t, lut, dsts[i]);
    });
  }
  py::list result;
  for (auto& o : outs) result.append(o);
  return result;
}

// ---- Incremental coding: one stream over several calls, each call with its own tables. ----

// An encoder fed by several calls, then flushed once: the Python class StreamEncoder.
struct StreamEncoder {
  std::optional<RangeEncoder> enc{std::in_place, size_t(0)};  // empty once flushed
  std::atomic<bool> busy{false};
};

// A decoder over bytes it keeps alive, read by several calls: the Python class StreamDecoder.
struct StreamDecoder {
  explicit StreamDecoder(U8Array bytes)
      : data(one_dimensional(std::move(bytes))), dec(data.data(), size_t(data.shape(0))) {}

  static U8Array one_dimensional(U8Array a) {
    if (a.ndim() != 1) throw std::invalid_argument("data must be 1-D");
    return a;
  }

  U8Array data;  // owns (or references) the bytes that dec reads
  RangeDecoder dec;
  bool finished = false;
  std::atomic<bool> busy{false};
};

// Marks coder objects in use for the length of a call, which releases the GIL, so that no two
// threads ever code into one object at once; a second user gets a RuntimeError.
class InUse {
 public:
  InUse() = default;
  InUse(const InUse&) = delete;
  InUse& operator=(const InUse&) = delete;
  ~InUse() {
    for (auto* b : held_) b->store(false);
  }

  void claim(std::atomic<bool>& busy, const char* what) {
    if (busy.exchange(true))
      throw std::runtime_error(std::string(what) + " is in use by another thread");
    held_.push_back(&busy);
  }

 private:
  std::vector<std::atomic<bool>*> held_;
};

// Rejects null and repeated objects: each may take part in a call once.
template <typename T>
void check_distinct(const std::vector<T*>& objects, const char* what) {
  std::vector<const T*> sorted(objects.begin(), objects.end());
  for (size_t i = 0; i < objects.size(); ++i)
    if (!objects[i]) throw std::invalid_argument(std::string(what) + "[" + std::to_string(i) + "] is None");
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    throw std::invalid_argument(std::string(what) + " holds one object twice");
}

struct EncodeJob {
  RangeEncoder* enc;
  const int32_t* symbols;
  const int32_t* indexes;
  size_t n;
};

// Codes every job onto its encoder on `threads` threads. All or nothing: if one fails, every
// encoder returns to its state before the call and the first failure, in job order, is rethrown.
void encode_jobs(const std::vector<EncodeJob>& jobs, const Tables& t, int threads) {
  std::vector<RangeEncoder::Checkpoint> marks;
  marks.reserve(jobs.size());
  for (const auto& j : jobs) marks.push_back(j.enc->checkpoint());
  try {
    parallel_for(jobs.size(), threads, [&](size_t i) {
      encode_symbols(*jobs[i].enc, jobs[i].symbols, jobs[i].indexes, jobs[i].n, t);
    });
  } catch (...) {
    for (size_t i = 0; i < jobs.size(); ++i) jobs[i].enc->rollback(marks[i]);
    throw;
  }
}

struct DecodeJob {
  RangeDecoder* dec;
  const int32_t* indexes;
  size_t n;
  int32_t* out;
};

// Decodes every job from its decoder on `threads` threads, all or nothing like encode_jobs.
void decode_jobs(const std::vector<DecodeJob>& jobs, const Tables& t, int threads) {
  const DecodeLut lut(t);
  std::vector<RangeDecoder> saved;
  saved.reserve(jobs.size());
  for (const auto& j : jobs) saved.push_back(*j.dec);
  try {
    parallel_for(jobs.size(), threads, [&](size_t i) {
      decode_symbols(*jobs[i].dec, jobs[i].indexes, jobs[i].n, t, lut, jobs[i].out);
    });
  } catch (...) {
    for (size_t i = 0; i < jobs.size(); ++i) *jobs[i].dec = saved[i];
    throw;
  }
}

RangeEncoder& open_encoder(StreamEncoder& s) {
  if (!s.enc) throw std::invalid_argument("the encoder was flushed: start a new one");
  return *s.enc;
}

RangeDecoder& open_decoder(StreamDecoder& s) {
  if (s.finished) throw std::invalid_argument("the decoder was finished: start a new one");
  return s.dec;
}

void encode_into(const std::vector<StreamEncoder*>& encoders,
                 const std::vector<std::pair<I32Array, I32Array>>& streams, const I32Array& cdfs,
                 const I32Array& lengths, const I32Array& offsets, int precision,
                 std::optional<int> threads) {
  if (encoders.size() != streams.size())
    throw std::invalid_argument("got " + std::to_string(encoders.size()) + " encoders but " +
                                std::to_string(streams.size()) + " streams");
  check_distinct(encoders, "encoders");
  for (const auto& s : streams) check_pair(s.first, s.second, "symbols and indexes of each stream");
  const Tables t = make_tables(cdfs, lengths, offsets, precision);
  const int workers = resolve_threads(threads, streams.size());
  InUse use;
  std::vector<EncodeJob> jobs;
  for (size_t i = 0; i < encoders.size(); ++i) {
    use.claim(encoders[i]->busy, "an encoder");
    const auto& s = streams[i];
    jobs.push_back({&open_encoder(*encoders[i]), s.first.data(), s.second.data(), size_t(s.first.shape(0))});
  }
  py::gil_scoped_release release;
  encode_jobs(jobs, t, workers);
}

py::list decode_from(const std::vector<StreamDecoder*>& decoders, const std::vector<I32Array>& indexes,
                     const I32Array& cdfs, const I32Array& lengths, const I32Array& offsets,
                     int precision, std::optional<int> threads) {
  if (decoders.size() != indexes.size())
    throw std::invalid_argument("got " + std::to_string(decoders.size()) + " decoders but " +
                                std::to_string(indexes.size()) + " index arrays");
  check_distinct(decoders, "decoders");
  for (const auto& idx : indexes)
    if (idx.ndim() != 1) throw std::invalid_argument("indexes of each stream must be 1-D");
  const Tables t = make_tables(cdfs, lengths, offsets, precision);
  const int workers = resolve_threads(threads, decoders.size());
  InUse use;
  std::vector<I32Array> outs;
  std::vector<DecodeJob> jobs;
  for (size_t i = 0; i < decoders.size(); ++i) {
    use.claim(decoders[i]->busy, "a decoder");
    outs.emplace_back(indexes[i].shape(0));
    jobs.push_back({&open_decoder(*decoders[i]), indexes[i].data(), size_t(indexes[i].shape(0)),
                    outs.back().mutable_data()});
  }
  {
    py::gil_scoped_release release;
    decode_jobs(jobs, t, workers);
  }
  py::list result;
  for (auto& o : outs) result.append(o);
  return result;
}

void stream_encode(StreamEncoder& self, const I32Array& symbols, const I32Array& indexes,
                   const I32Array& cdfs, const I32Array& lengths, const I32Array& offsets,
                   int precision) {
  check_pair(symbols, indexes, "symbols and indexes");
  const Tables t = make_tables(cdfs, lengths, offsets, precision);
  InUse use;
  use.claim(self.busy, "the encoder");
  const std::vector<EncodeJob> jobs{
      {&open_encoder(self), symbols.data(), indexes.data(), size_t(symbols.shape(0))}};
  py::gil_scoped_release release;
  encode_jobs(jobs, t, 1);
}

py::bytes stream_flush(StreamEncoder& self) {
  InUse use;
  use.claim(self.busy, "the encoder");
  const std::vector<uint8_t> out = open_encoder(self).finish();
  self.enc.reset();
  return to_bytes(out);
}

I32Array stream_decode(StreamDecoder& self, const I32Array& indexes, const I32Array& cdfs,
                       const I32Array& lengths, const I32Array& offsets, int precision) {
  if (indexes.ndim() != 1) throw std::invalid_argument("indexes must be 1-D");
  const Tables t = make_tables(cdfs, lengths, offsets, precision);
  InUse use;
  use.claim(self.busy, "the decoder");
  I32Array out(indexes.shape(0));
  const std::vector<DecodeJob> jobs{
      {&open_decoder(self), indexes.data(), size_t(indexes.shape(0)), out.mutable_data()}};
  {
    py::gil_scoped_release release;
    decode_jobs(jobs, t, 1);
  }
  return out;
}

// The end check of a one-shot decode: raises BitstreamError when bytes are left unread.
void stream_finish(StreamDecoder& self) {
  InUse use;
  use.claim(self.busy, "the decoder");
  self.finished = true;
  self.dec.finish();
}

// Cost change of adding one unit to a frequency f of a symbol with probability p, in nats of
// -sum p log q. The same expression prices removing a unit from f + 1, so that no exchange can
// undo itself through rounding.
inline double unit_gain(double p, int64_t f) { return p * std::log1p(1.0 / double(f)); }

// Quantises one normalised pmf to frequencies >= 1 summing to `total` with minimal
// -sum p log(f / total): round, restore the sum by the cheapest unit moves, then exchange units
// between symbols while that lowers the cost (exact for this separable convex objective).
void quantise_row(const double* p, int64_t n, int64_t total, int64_t* f) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += f[i] = std::max<int64_t>(1, std::llround(p[i] * double(total)));
  using Entry = std::pair<double, int64_t>;
  if (sum > total) {
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> cheapest;  // removal cost
    for (int64_t i = 0; i < n; ++i)
      if (f[i] > 1) cheapest.emplace(unit_gain(p[i], f[i] - 1), i);
    for (; sum > total; --sum) {
      const int64_t i = cheapest.top().second;
      cheapest.pop();
      if (--f[i] > 1) cheapest.emplace(unit_gain(p[i], f[i] - 1), i);
    }
  } else if (sum < total) {
    auto cmp = [](const Entry& a, const Entry& b) {
      return a.first < b.first || (a.first == b.first && a.second > b.second);
    };
    std::priority_queue<Entry, std::vector<Entry>, decltype(cmp)> best(cmp);  // addition gain
    for (int64_t i = 0; i < n; ++i) best.emplace(unit_gain(p[i], f[i]), i);
    for (; sum < total; ++sum) {
      const int64_t i = best.top().second;
      best.pop();
      ++f[i];
      best.emplace(unit_gain(p[i], f[i]), i);
    }
  }
  // The best addition and the cheapest removal cannot be the same symbol with a positive net
  // gain (the objective is convex per symbol), so comparing the two extremes suffices.
  for (;;) {
    int64_t to = 0, from = -1;
    double gain = unit_gain(p[0], f[0]), cost = 0;
    for (int64_t i = 1; i < n; ++i) {
      const double g = unit_gain(p[i], f[i]);
      if (g > gain) gain = g, to = i;
    }
    for (int64_t i = 0; i < n; ++i) {
      if (f[i] <= 1) continue;
      const double c = unit_gain(p[i], f[i] - 1);
      if (from < 0 || c < cost) cost = c, from = i;
    }
    if (from < 0 || gain <= cost) break;
    --f[from];
    ++f[to];
  }
}

// Portable quantisation of one normalised pmf: f = 1 + floor(p (total - n)), the remainder to the
// first most probable symbol. Only correctly rounded IEEE-754 operations (no log), so every machine
// builds the same table from the same pmf: for tables that the decoder computes from decoded data.
void quantise_row_portable(const double* p, int64_t n, int64_t total, int64_t* f) {
  const double spread = double(total - n);
  int64_t sum = 0, top = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum += f[i] = 1 + static_cast<int64_t>(std::floor(p[i] * spread));
    if (f[i] > f[top]) top = i;
  }
  f[top] += total - sum;  // sum <= total: the floors drop less than one unit each
}

I32Array pmf_to_quantized_cdf(const py::array_t<double, py::array::c_style>& pmf, int precision, bool portable) {
  if (precision < 1 || precision > kMaxPrecision)
    throw std::invalid_argument("precision must be in 1.." + std::to_string(kMaxPrecision));
  if (pmf.ndim() != 2) throw std::invalid_argument("pmf must be 2-D [rows, symbols]");
  const int64_t rows = pmf.shape(0), n = pmf.shape(1);
  const int64_t total = int64_t(1) << precision;
  if (n < 1 || n > total)
    throw std::invalid_argument("pmf rows need 1.." + std::to_string(total) +
                                " symbols at this precision, got " + std::to_string(n));
  const double* src = pmf.data();
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double v = src[r * n + i];
      if (!std::isfinite(v) || v < 0)
        throw std::invalid_argument("pmf row " + std::to_string(r) + " has a negative or non-finite entry");
      sum += v;
    }
    if (!(sum > 0)) throw std::invalid_argument("pmf row " + std::to_string(r) + " sums to zero");
  }
  I32Array out({rows, n + 1});
  int32_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    std::vector<double> p(static_cast<size_t>(n));
    std::vector<int64_t> f(static_cast<size_t>(n));
    for (int64_t r = 0; r < rows; ++r) {
      const double* row = src + r * n;
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += row[i];
      for (int64_t i = 0; i < n; ++i) p[size_t(i)] = row[i] / sum;
      if (portable) quantise_row_portable(p.data(), n, total, f.data());
      else quantise_row(p.data(), n, total, f.data());
      int32_t* cdf = dst + r * (n + 1);
      cdf[0] = 0;
      for (int64_t i = 0; i < n; ++i) cdf[i + 1] = cdf[i] + int32_t(f[size_t(i)]);
    }
  }
  return out;
}

using F32Array = py::array_t<float, py::array::c_style>;

// The CDF table of each element of a location-scale model (lnc.entropy.gaussian): the first entry of
// the increasing scale `table` not below its scale, the last entry for larger scales and NaN (what
// torch.searchsorted, clamped, gives); with offsets = K > 0, that index times K plus the bin
// floor((mean - round(mean) + 1/2) K), clamped to [0, K), of its mean's offset from the nearest
// integer (ties to even, as torch.round). All in float32, as the torch expressions would compute it.
I32Array table_indexes(const F32Array& scales, const std::optional<F32Array>& means, const F32Array& table,
                       int offsets) {
  const int64_t n = scales.size();
  const int entries = static_cast<int>(table.size());
  if (entries < 1) throw std::invalid_argument("the scale table is empty");
  if (offsets < 0) throw std::invalid_argument("offsets must be 0 or positive");
  if (offsets > 0 && (!means || means->size() != n))
    throw std::invalid_argument("offsets need one mean per scale");
  I32Array out(n);
  const float* s = scales.data();
  const float* m = offsets > 0 ? means->data() : nullptr;
  const float* t = table.data();
  int32_t* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    const int per_scale = std::max(offsets, 1);
    for (int64_t i = 0; i < n; ++i) {
      const float v = s[i];
      int index = 0;  // entries below v: a branch-free count that the compiler vectorises
      for (int j = 0; j < entries; ++j) index += t[j] < v;
      if (index >= entries || std::isnan(v)) index = entries - 1;
      int bin = 0;
      if (offsets > 0) {
        const float f = std::floor((m[i] - std::nearbyint(m[i]) + 0.5f) * static_cast<float>(offsets));
        bin = f >= 0 ? (f < offsets ? static_cast<int>(f) : offsets - 1) : 0;  // NaN: bin 0
      }
      dst[i] = index * per_scale + bin;
    }
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_range_coder, m) {
  m.doc() = "Range coder over quantised CDF tables (see docs/range_coder.md); use lnc.entropy.coder.";

  PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<py::object> bitstream_error;
  bitstream_error.call_once_and_store_result(
      []() { return py::module_::import("lnc.entropy.errors").attr("BitstreamError"); });
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const BitstreamFault& e) {
      py::set_error(bitstream_error.get_stored(), e.what());
    }
  });

  m.def("encode", &encode, py::arg("symbols"), py::arg("indexes"), py::arg("cdfs"), py::arg("cdf_lengths"),
        py::arg("offsets"), py::arg("precision"));
  m.def("decode", &decode, py::arg("data"), py::arg("indexes"), py::arg("cdfs"), py::arg("cdf_lengths"),
        py::arg("offsets"), py::arg("precision"));
  m.def("encode_streams", &encode_streams, py::arg("streams"), py::arg("cdfs"), py::arg("cdf_lengths"),
        py::arg("offsets"), py::arg("precision"), py::arg("threads"));
  m.def("decode_streams", &decode_streams, py::arg("datas"), py::arg("indexes"), py::arg("cdfs"),
        py::arg("cdf_lengths"), py::arg("offsets"), py::arg("precision"), py::arg("threads"));
  py::class_<StreamEncoder>(m, "StreamEncoder",
                            "Range encoder fed by several encode() calls, each with its own tables; "
                            "flush() ends the stream.")
      .def(py::init<>())
      .def("encode", &stream_encode, py::arg("symbols"), py::arg("indexes"), py::arg("cdfs"),
           py::arg("cdf_lengths"), py::arg("offsets"), py::arg("precision"))
      .def("flush", &stream_flush);
  py::class_<StreamDecoder>(m, "StreamDecoder",
                            "Range decoder over one stream, read by decode() calls in the order of "
                            "the encoder's; finish() checks that no bytes are left.")
      .def(py::init<U8Array>(), py::arg("data"))
      .def("decode", &stream_decode, py::arg("indexes"), py::arg("cdfs"), py::arg("cdf_lengths"),
           py::arg("offsets"), py::arg("precision"))
      .def("finish", &stream_finish);
  m.def("encode_into", &encode_into, py::arg("encoders"), py::arg("streams"), py::arg("cdfs"),
        py::arg("cdf_lengths"), py::arg("offsets"), py::arg("precision"), py::arg("threads"));
  m.def("decode_from", &decode_from, py::arg("decoders"), py::arg("indexes"), py::arg("cdfs"),
        py::arg("cdf_lengths"), py::arg("offsets"), py::arg("precision"), py::arg("threads"));
  m.def("pmf_to_quantized_cdf", &pmf_to_quantized_cdf, py::arg("pmf"), py::arg("precision"),
        py::arg("portable") = false);
  m.def("table_indexes", &table_indexes, py::arg("scales"), py::arg("means"), py::arg("table"),
        py::arg("offsets"));
  m.def("hardware_threads", &hardware_threads);
  m.attr("MAX_PRECISION") = kMaxPrecision;
}
