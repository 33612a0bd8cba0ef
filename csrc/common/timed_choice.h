// timed_choice.h -- one cache of timed decisions between interchangeable implementations of one
// computation (the same numbers up to float32 summation order), for the CPU and the CUDA glue
// alike: the CPU bf16 mode's GEMM paths (glue/encoder_cpu.cpp) and the CUDA encoder's fused
// kernels against cuBLAS (glue/cuda/fused_choice_cuda.cpp). Which is faster is a property of the
// machine and the shape, not of flags, so each candidate is timed once per key (what the speed
// depends on: layer, precision, widths, a row bucket, the device) and the fastest is kept. Torch-free:
// the caller hands over a timer (steady clock on the CPU, CUDA events on a GPU).
//
// What it reports is a struct (TimedChoiceReport), serialised once to JSON for the private ops that show it
// (satclip.ops.extension turns it into a dict): no ad-hoc "which|why" strings to parse.
#pragma once

#include <cstddef>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace satclip {

struct TimedCandidate {
  std::string name;
  double ms = 0;  // the candidate's best timed run
};

struct TimedDecision {
  std::string key;     // what the speed depends on
  std::string chosen;  // the fastest candidate's name
  std::vector<TimedCandidate> timed;
  std::string unit;    // what one timed run covered ("4096 points", "one chunk")
};

// What a cache reports: the mode it runs in ("auto" times; a forced one names a candidate), why
// (the facts behind the mode), the candidates' names and every decision made so far.
struct TimedChoiceReport {
  std::string mode;
  std::string path;  // what runs when nothing is timed: the forced or only candidate, or "measured"
  std::string why;
  std::vector<TimedDecision> decisions;
};

inline std::string json_quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

inline std::string to_json(const TimedChoiceReport& r) {
  std::string out = "{\"mode\": " + json_quoted(r.mode) + ", \"path\": " + json_quoted(r.path) +
                    ", \"why\": " + json_quoted(r.why) + ", \"decisions\": [";
  for (size_t i = 0; i < r.decisions.size(); ++i) {
    const TimedDecision& d = r.decisions[i];
    out += (i ? ", " : "") + std::string("{\"key\": ") + json_quoted(d.key) + ", \"chosen\": " + json_quoted(d.chosen) +
           ", \"unit\": " + json_quoted(d.unit) + ", \"ms\": {";
    for (size_t j = 0; j < d.timed.size(); ++j) {
      char ms[32];
      std::snprintf(ms, sizeof ms, "%.6g", d.timed[j].ms);
      out += (j ? ", " : "") + json_quoted(d.timed[j].name) + ": " + ms;
    }
    out += "}}";
  }
  return out + "]}";
}

// Decisions per key, bounded (past `max_keys` the caller's untimed default runs), and the mode the
// cache runs in (its switch: "auto" times, any other of `modes` forces a path; set by
// satclip.ops.switches through the private op that reports the cache). The lock is held while
// timing: two threads meeting a new key time it once, and timed runs never overlap.
class TimedChoices {
 public:
  TimedChoices(size_t max_keys, std::vector<std::string> modes)
      : max_keys_(max_keys), modes_(std::move(modes)), mode_(modes_.front()) {}

  std::string mode() const {
    std::lock_guard<std::mutex> lock(mu_);
    return mode_;
  }

  // Sets the mode; false (nothing set) for a value not in `modes`.
  bool set_mode(const std::string& m) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& known : modes_) {
      if (m == known) {
        mode_ = m;
        return true;
      }
    }
    return false;
  }

  // The index of the fastest of `names` for `key`, timing each once (time_ms(i): milliseconds of
  // candidate i's best run) when the key is new; `untimed` when the cache is full or time_ms
  // cannot time now (it returns a negative value, e.g. inside a CUDA graph capture).
  int choose(const std::string& key, const std::vector<std::string>& names, const std::function<double(int)>& time_ms,
             int untimed, const std::string& unit) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = decided_.find(key);
    if (it != decided_.end()) return it->second.first;
    if (decided_.size() >= max_keys_) return untimed;
    TimedDecision d{key, "", {}, unit};
    int best = 0;
    for (int i = 0; i < static_cast<int>(names.size()); ++i) {
      const double ms = time_ms(i);
      if (ms < 0) return untimed;
      d.timed.push_back({names[i], ms});
      if (ms < d.timed[best].ms) best = i;
    }
    d.chosen = names[best];
    return decided_.emplace(key, std::make_pair(best, std::move(d))).first->second.first;
  }

  // The candidate index decided for `key` so far, if any (untimed).
  std::optional<int> decided(const std::string& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = decided_.find(key);
    if (it == decided_.end()) return std::nullopt;
    return it->second.first;
  }

  std::vector<TimedDecision> decisions() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<TimedDecision> out;
    for (const auto& [key, entry] : decided_) out.push_back(entry.second);
    return out;
  }

 private:
  size_t max_keys_;
  std::vector<std::string> modes_;
  std::string mode_;
  mutable std::mutex mu_;
  std::map<std::string, std::pair<int, TimedDecision>> decided_;
};

}  // namespace satclip
