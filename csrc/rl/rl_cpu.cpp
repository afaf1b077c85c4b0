// CPU engines of tabular reinforcement learning: many games of TD(0) tic-tac-toe or of Q-learning
// Flippers, for R independent runs (one table each), in one call. The algorithm, the board codes and
// the order of every float64 operation are those of genfast/reference/rl.py, which reads as the
// specification; the random numbers are the counter-based Philox of rl.h, so the tables come out
// bit-identical to the reference's whatever the number of threads.
//
// Runs are spread over the threads with at::parallel_for, one run per task: a run's games are a
// chain of dependent updates, and runs share nothing but read-only inputs.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "rl/rl.h"

// The reference computes a + b * c with two roundings: no fused multiply-add contraction here.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace genfast::rl {
namespace {

constexpr int kCells = 9;
constexpr int64_t kCodes = 19683;  // 3^9 tic-tac-toe codes
constexpr int64_t kBoards = 512;   // 2^9 flippers boards
constexpr int kPow3[kCells] = {1, 3, 9, 27, 81, 243, 729, 2187, 6561};
constexpr int8_t kDraw = 3;        // genfast.rl.boards.DRAW

double schedule(double start, double end, int64_t game, int64_t total) {
  return start + (end - start) * (static_cast<double>(game) / static_cast<double>(total));
}

// The option of the largest value; a tie is broken by r among the tied options, in order.
int greedy(const double* values, const int* options, int n, uint64_t r) {
  double best = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < n; ++i) best = values[i] > best ? values[i] : best;
  int tied[kCells] = {0}, count = 0;
  for (int i = 0; i < n; ++i)
    if (values[i] == best) tied[count++] = options[i];
  return tied[below(r, count)];
}

// ------------------------------------------------------------------------------------ checks

void check_table(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.dim() == 2, "genfast.", op, ": expected ", name, " of shape (R, S), got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == at::kDouble, "genfast.", op, ": expected ", name, " to be float64, got ",
              t.scalar_type());
  TORCH_CHECK(t.size(1) > 0, "genfast.", op, ": expected ", name, " to have at least one entry per run, got ",
              t.sizes());
  TORCH_CHECK(at::isfinite(t).all().item<bool>(), "genfast.", op, ": expected ", name, " to hold finite values");
}

void check_index_map(const at::Tensor& m, at::IntArrayRef shape, int64_t entries, const char* op) {
  TORCH_CHECK(m.sizes() == shape && m.scalar_type() == at::kLong, "genfast.", op,
              ": expected index_map to be int64 of shape ", shape, ", got ", m.scalar_type(), " ", m.sizes());
  if (m.numel()) {
    TORCH_CHECK(m.min().item<int64_t>() >= 0 && m.max().item<int64_t>() < entries, "genfast.", op,
                ": expected index_map entries in [0, ", entries, ") (the table's size), got [",
                m.min().item<int64_t>(), ", ", m.max().item<int64_t>(), "]");
  }
}

void check_runs(const at::Tensor& seeds, const at::Tensor& alpha, const at::Tensor& epsilon, int64_t runs,
                const char* op) {
  TORCH_CHECK(seeds.dim() == 1 && seeds.size(0) == runs && seeds.scalar_type() == at::kLong, "genfast.", op,
              ": expected seeds to be int64 of shape (", runs, ",) (one per run), got ", seeds.scalar_type(), " ",
              seeds.sizes());
  TORCH_CHECK(runs == 0 || seeds.min().item<int64_t>() >= 0, "genfast.", op, ": expected seeds >= 0");
  for (auto [t, name] : {std::pair{alpha, "alpha"}, std::pair{epsilon, "epsilon"}}) {
    TORCH_CHECK(t.dim() == 2 && t.size(0) == runs && t.size(1) == 2 && t.scalar_type() == at::kDouble, "genfast.",
                op, ": expected ", name, " to be float64 of shape (", runs, ", 2) (start and end per run), got ",
                t.scalar_type(), " ", t.sizes());
    TORCH_CHECK(runs == 0 || (t.min().item<double>() >= 0.0 && t.max().item<double>() <= 1.0), "genfast.", op,
                ": expected ", name, " in [0, 1]");
  }
}

void check_games(int64_t first_game, int64_t games, int64_t total_games, const char* op) {
  TORCH_CHECK(first_game >= 0 && games >= 0, "genfast.", op, ": expected first_game >= 0 and games >= 0, got ",
              first_game, " and ", games);
  TORCH_CHECK(total_games >= 1 && total_games >= first_game + games, "genfast.", op,
              ": expected total_games >= max(1, first_game + games) (the schedules' length), got ", total_games);
}

void check_device(const at::Tensor& t, const char* name, const char* op) {
  TORCH_CHECK(t.device().is_cpu(), "genfast.", op, ": expected ", name, " on the CPU, got ", t.device());
}

// ------------------------------------------------------------------------------------ tic-tac-toe

enum class Opponent { kSelf, kRandom, kTable };
enum class Side { kX, kO, kAlternate };

struct TicTacToe {
  const int64_t* index;
  const int8_t* outcomes;
  const double* opponent_values;  // by code; kTable only
  Opponent opponent;
  Side side;
  int64_t first_game, games, total_games;
};

void tictactoe_run(const TicTacToe& t, double* V, uint64_t seed, const double* alpha, const double* epsilon,
                   int64_t* stats) {
  const int64_t* index = t.index;
  for (int64_t game = t.first_game; game < t.first_game + t.games; ++game) {
    const double a = schedule(alpha[0], alpha[1], game, t.total_games);
    const double eps = schedule(epsilon[0], epsilon[1], game, t.total_games);
    const int agent = t.side == Side::kAlternate ? static_cast<int>(game % 2) : (t.side == Side::kX ? 0 : 1);
    const bool self = t.opponent == Opponent::kSelf;
    const bool learns[2] = {self || agent == 0, self || agent == 1};
    int64_t last[2] = {-1, -1};  // each learner's previous afterstate (its table entry)
    int code = 0;
    int8_t cells[kCells] = {0};
    for (int ply = 0; ply < kCells; ++ply) {
      const int p = ply % 2, mark = p + 1;
      const Words r = draws(seed, kTicTacToeStream, game, ply);
      int legal[kCells], n = 0;
      for (int m = 0; m < kCells; ++m)
        if (cells[m] == 0) legal[n++] = m;
      bool explored = false;
      int move;
      if (learns[p] && uniform(r.w[0]) < eps) {
        move = legal[below(r.w[1], n)];
        explored = true;
      } else if (learns[p] || t.opponent == Opponent::kTable) {
        double values[kCells];
        for (int i = 0; i < n; ++i) {
          const int next = code + mark * kPow3[legal[i]];
          values[i] = learns[p] ? V[index[next]] : t.opponent_values[next];
        }
        move = greedy(values, legal, n, r.w[2]);
      } else {
        move = legal[below(r.w[1], n)];
      }
      code += mark * kPow3[move];
      cells[move] = static_cast<int8_t>(mark);
      if (learns[p]) {
        const int64_t s = index[code];
        if (!explored && last[p] >= 0) V[last[p]] = V[last[p]] + a * (V[s] - V[last[p]]);
        last[p] = s;
      }
      const int8_t result = t.outcomes[code];
      if (result) {
        const int q = 1 - p;  // the player who did not make the last move
        if (learns[q] && last[q] >= 0) {
          const double target = result == kDraw ? V[index[code]] : 0.0;
          V[last[q]] = V[last[q]] + a * (target - V[last[q]]);
        }
        ++stats[result - 1];
        break;
      }
    }
  }
}

std::tuple<at::Tensor, at::Tensor> rl_tictactoe_td_cpu(const at::Tensor& values, const at::Tensor& index_map,
                                                       const at::Tensor& outcomes, const at::Tensor& seeds,
                                                       const at::Tensor& alpha, const at::Tensor& epsilon,
                                                       const std::optional<at::Tensor>& opponent_values,
                                                       c10::string_view opponent, c10::string_view side,
                                                       int64_t first_game, int64_t games, int64_t total_games) {
  const char* op = "rl_tictactoe_td";
  for (auto [t, name] : {std::pair{values, "values"}, std::pair{index_map, "index_map"},
                         std::pair{outcomes, "outcomes"}, std::pair{seeds, "seeds"}, std::pair{alpha, "alpha"},
                         std::pair{epsilon, "epsilon"}})
    check_device(t, name, op);
  check_table(values, op, "values");
  const int64_t runs = values.size(0);
  check_index_map(index_map, {kCodes}, values.size(1), op);
  TORCH_CHECK(outcomes.sizes() == at::IntArrayRef{kCodes} && outcomes.scalar_type() == at::kChar, "genfast.", op,
              ": expected outcomes to be int8 of shape (", kCodes, ",), got ", outcomes.scalar_type(), " ",
              outcomes.sizes());
  TORCH_CHECK(outcomes.min().item<int>() >= 0 && outcomes.max().item<int>() <= 3, "genfast.", op,
              ": expected outcomes in 0..3 (ongoing, X wins, O wins, draw)");
  check_runs(seeds, alpha, epsilon, runs, op);
  check_games(first_game, games, total_games, op);
  TicTacToe t{nullptr, nullptr, nullptr, Opponent::kSelf, Side::kX, first_game, games, total_games};
  if (opponent == "self") {
    t.opponent = Opponent::kSelf;
  } else if (opponent == "random") {
    t.opponent = Opponent::kRandom;
  } else if (opponent == "table") {
    t.opponent = Opponent::kTable;
  } else {
    TORCH_CHECK(false, "genfast.", op, ": expected opponent to be one of 'self', 'random', 'table', got '",
                std::string(opponent), "'");
  }
  if (side == "x") {
    t.side = Side::kX;
  } else if (side == "o") {
    t.side = Side::kO;
  } else if (side == "alternate") {
    t.side = Side::kAlternate;
  } else {
    TORCH_CHECK(false, "genfast.", op, ": expected side to be one of 'x', 'o', 'alternate', got '",
                std::string(side), "'");
  }
  at::Tensor opp;
  if (t.opponent == Opponent::kTable) {
    TORCH_CHECK(opponent_values.has_value(), "genfast.", op, ": opponent 'table' needs opponent_values");
    opp = opponent_values->contiguous();
    check_device(opp, "opponent_values", op);
    TORCH_CHECK(opp.sizes() == at::IntArrayRef{kCodes} && opp.scalar_type() == at::kDouble, "genfast.", op,
                ": expected opponent_values to be float64 of shape (", kCodes, ",), got ", opp.scalar_type(), " ",
                opp.sizes());
    TORCH_CHECK(at::isfinite(opp).all().item<bool>(), "genfast.", op, ": expected opponent_values to be finite");
    t.opponent_values = opp.data_ptr<double>();
  }

  at::Tensor out = values.contiguous().clone();
  at::Tensor stats = at::zeros({runs, 3}, values.options().dtype(at::kLong));
  const at::Tensor index = index_map.contiguous(), outc = outcomes.contiguous();
  const at::Tensor seed = seeds.contiguous(), al = alpha.contiguous(), ep = epsilon.contiguous();
  t.index = index.data_ptr<int64_t>();
  t.outcomes = outc.data_ptr<int8_t>();
  double* V = out.data_ptr<double>();
  int64_t* st = stats.data_ptr<int64_t>();
  const int64_t S = out.size(1);
  at::parallel_for(0, runs, 1, [&](int64_t begin, int64_t end) {
    for (int64_t run = begin; run < end; ++run)
      tictactoe_run(t, V + run * S, static_cast<uint64_t>(seed.data_ptr<int64_t>()[run]),
                    al.data_ptr<double>() + 2 * run, ep.data_ptr<double>() + 2 * run, st + 3 * run);
  });
  return {out, stats};
}

// ---------------------------------------------------------------------------------------- flippers

struct Flippers {
  const int64_t* index;  // (512, 9)
  const bool* goals;
  const int* starts;     // the boards that are not goals, in order
  int n_starts;
  int64_t first_game, games, total_games, max_moves;
  double goal_reward, move_reward;
};

double max_q(const double* Q, const int64_t* index, int board) {
  double best = -std::numeric_limits<double>::infinity();
  for (int m = 0; m < kCells; ++m) {
    const double v = Q[index[board * kCells + m]];
    best = v > best ? v : best;
  }
  return best;
}

void flippers_run(const Flippers& f, double* Q, uint64_t seed, const double* alpha, const double* epsilon,
                  double gamma, int64_t* stats) {
  static constexpr int kMoves[kCells] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  const int64_t* index = f.index;
  for (int64_t game = f.first_game; game < f.first_game + f.games; ++game) {
    const double a = schedule(alpha[0], alpha[1], game, f.total_games);
    const double eps = schedule(epsilon[0], epsilon[1], game, f.total_games);
    int board = f.starts[below(draws(seed, kFlippersStream, game, 0).w[0], f.n_starts)];
    bool solved = false;
    for (int64_t step = 0; step < f.max_moves; ++step) {
      const Words r = draws(seed, kFlippersStream, game, step + 1);
      int move;
      if (uniform(r.w[0]) < eps) {
        move = below(r.w[1], kCells);
      } else {
        double values[kCells];
        for (int m = 0; m < kCells; ++m) values[m] = Q[index[board * kCells + m]];
        move = greedy(values, kMoves, kCells, r.w[2]);
      }
      const int next = board ^ (1 << move);
      const bool done = f.goals[next];
      const double target = done ? f.move_reward + f.goal_reward : f.move_reward + gamma * max_q(Q, index, next);
      const int64_t i = index[board * kCells + move];
      Q[i] = Q[i] + a * (target - Q[i]);
      board = next;
      if (done) {
        ++stats[0];
        stats[2] += step + 1;
        solved = true;
        break;
      }
    }
    if (!solved) ++stats[1];
  }
}

std::tuple<at::Tensor, at::Tensor> rl_flippers_q_cpu(const at::Tensor& q, const at::Tensor& index_map,
                                                     const at::Tensor& goals, const at::Tensor& seeds,
                                                     const at::Tensor& alpha, const at::Tensor& epsilon,
                                                     const at::Tensor& gamma, int64_t first_game, int64_t games,
                                                     int64_t total_games, int64_t max_moves, double goal_reward,
                                                     double move_reward) {
  const char* op = "rl_flippers_q";
  for (auto [t, name] : {std::pair{q, "q"}, std::pair{index_map, "index_map"}, std::pair{goals, "goals"},
                         std::pair{seeds, "seeds"}, std::pair{alpha, "alpha"}, std::pair{epsilon, "epsilon"},
                         std::pair{gamma, "gamma"}})
    check_device(t, name, op);
  check_table(q, op, "q");
  const int64_t runs = q.size(0);
  check_index_map(index_map, {kBoards, kCells}, q.size(1), op);
  TORCH_CHECK(goals.sizes() == at::IntArrayRef{kBoards} && goals.scalar_type() == at::kBool, "genfast.", op,
              ": expected goals to be bool of shape (", kBoards, ",), got ", goals.scalar_type(), " ", goals.sizes());
  check_runs(seeds, alpha, epsilon, runs, op);
  TORCH_CHECK(gamma.dim() == 1 && gamma.size(0) == runs && gamma.scalar_type() == at::kDouble, "genfast.", op,
              ": expected gamma to be float64 of shape (", runs, ",), got ", gamma.scalar_type(), " ", gamma.sizes());
  TORCH_CHECK(runs == 0 || (gamma.min().item<double>() >= 0.0 && gamma.max().item<double>() <= 1.0), "genfast.",
              op, ": expected gamma in [0, 1]");
  check_games(first_game, games, total_games, op);
  TORCH_CHECK(max_moves >= 1, "genfast.", op, ": expected max_moves >= 1, got ", max_moves);
  TORCH_CHECK(std::isfinite(goal_reward) && std::isfinite(move_reward), "genfast.", op,
              ": expected finite goal_reward and move_reward, got ", goal_reward, " and ", move_reward);

  const at::Tensor goal = goals.contiguous();
  std::vector<int> starts;
  for (int b = 0; b < kBoards; ++b)
    if (!goal.data_ptr<bool>()[b]) starts.push_back(b);
  TORCH_CHECK(!starts.empty(), "genfast.", op, ": expected at least one board that is not a goal (a start board)");
  at::Tensor out = q.contiguous().clone();
  at::Tensor stats = at::zeros({runs, 3}, q.options().dtype(at::kLong));
  const at::Tensor index = index_map.contiguous(), seed = seeds.contiguous();
  const at::Tensor al = alpha.contiguous(), ep = epsilon.contiguous(), ga = gamma.contiguous();
  const Flippers f{index.data_ptr<int64_t>(), goal.data_ptr<bool>(), starts.data(), static_cast<int>(starts.size()),
                   first_game, games, total_games, max_moves, goal_reward, move_reward};
  double* Q = out.data_ptr<double>();
  int64_t* st = stats.data_ptr<int64_t>();
  const int64_t S = out.size(1);
  at::parallel_for(0, runs, 1, [&](int64_t begin, int64_t end) {
    for (int64_t run = begin; run < end; ++run)
      flippers_run(f, Q + run * S, static_cast<uint64_t>(seed.data_ptr<int64_t>()[run]),
                   al.data_ptr<double>() + 2 * run, ep.data_ptr<double>() + 2 * run, ga.data_ptr<double>()[run],
                   st + 3 * run);
  });
  return {out, stats};
}

}  // namespace
}  // namespace genfast::rl

TORCH_LIBRARY_IMPL(genfast, CPU, m) {
  m.impl("rl_tictactoe_td", &genfast::rl::rl_tictactoe_td_cpu);
  m.impl("rl_flippers_q", &genfast::rl::rl_flippers_q_cpu);
}
