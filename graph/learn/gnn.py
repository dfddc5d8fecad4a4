"""The relation-aware heterogeneous GNN (DESIGN.md §6).

Each relationship kind gets its own SAGE convolution (a shared phone means something else than a shared
IP), SAME_FACE links a weighted GraphConv on the face similarity; layers are residual with LayerNorm, and
the head sees both the account's own encoding and its message-passing state, so it can never do worse than
an MLP on the features. Trained full-batch (no neighbour sampler is available without pyg-lib), with a
positive-class weight for the imbalance, a warm-up then cosine learning-rate schedule that ends training
(150 epochs; with a constant rate, validation AUPRC at 1M accounts crept up by 0.001 per 20-30 epochs for 160
epochs), early stopping on a validation split, and an optional wall-clock budget that stops at the best
checkpoint so far. It is inductive: weights are per relation, not per node, so a new account is scored from its
neighbourhood without retraining.
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import GraphConv, HeteroConv, SAGEConv

from graph.learn.features import NON_LINKING
from graph.learn.heap import reuse_freed_memory
from graph.learn.hetero import ACCOUNT, EDGE_TYPES, FACE_EDGE, NODE_TYPES, GraphInput, rel_edge, rev_edge
from graph.learn.small_gnn import FlatGNN, SmallGraph
from graph.learn.splits import validation_split
from graph.schema import SIGNALS


class HeteroGNN(nn.Module):
    def __init__(
        self, in_account: int, in_signal: int, hidden: int = 32, layers: int = 2, dropout: float = 0.2
    ):
        super().__init__()
        self.enc = nn.ModuleDict(
            {nt: nn.Linear(in_account if nt == ACCOUNT else in_signal, hidden) for nt in NODE_TYPES}
        )
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(layers):
            convs = {et: SAGEConv((hidden, hidden), hidden) for et in EDGE_TYPES if et != FACE_EDGE}
            convs[FACE_EDGE] = GraphConv(hidden, hidden, aggr="mean")
            self.convs.append(HeteroConv(convs, aggr="sum"))
            self.norms.append(nn.ModuleDict({nt: nn.LayerNorm(hidden) for nt in NODE_TYPES}))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, x_dict, edge_index_dict, face_weight: torch.Tensor) -> torch.Tensor:
        """The function ``HeteroConv`` would compute with these weights, rearranged for speed (``_into_accounts``);
        the last layer updates accounts only, since signal states after it feed nothing."""
        h = {nt: torch.relu(self.enc[nt](x)) for nt, x in x_dict.items()}
        h0 = h[ACCOUNT]
        into_acc = [et for et in edge_index_dict if et[2] == ACCOUNT]
        into_sig = [et for et in edge_index_dict if et[2] != ACCOUNT]
        dst, w = _mean_weights(edge_index_dict, into_acc, face_weight, h0.shape[0])
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            # like HeteroConv, a node type no relation points into keeps its state (no norm either)
            out = {ACCOUNT: _into_accounts(conv, h, edge_index_dict, into_acc, dst, w)} if into_acc else {}
            for et in into_sig if i < len(self.convs) - 1 else ():
                if not h[et[2]].shape[0]:  # no node of this kind in a small subgraph: nothing to update
                    continue
                o = conv.convs[et]((h[et[0]], h[et[2]]), edge_index_dict[et])
                out[et[2]] = out[et[2]] + o if et[2] in out else o
            p = self.dropout.p if self.training else 0.0
            h = {nt: norm[nt](h[nt] + _dropout(torch.relu(o), p)) for nt, o in out.items()} | {
                nt: v for nt, v in h.items() if nt not in out
            }
        # the head is Linear, ReLU, Dropout, Linear; its dropout runs as _dropout too
        z = torch.relu(self.head[0](torch.cat([h0, h[ACCOUNT]], dim=-1)))
        return self.head[3](_dropout(z, self.head[2].p if self.training else 0.0)).squeeze(-1)


# what a full graph holds, for models saved before they kept ``relations_``: a non-linking kind (the /24)
# never has an edge (``graph.learn.hetero``)
_LINKING_RELATIONS = [
    *(rel_edge(s.label, s.rel) for s in SIGNALS if s.rel not in NON_LINKING),
    *(rev_edge(s.label, s.rel) for s in SIGNALS if s.rel not in NON_LINKING),
    FACE_EDGE,
]


def _dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout from 16 random bits per element, drawn as full-range int64 words: the same as
    ``nn.Dropout`` in distribution (the drop rate is ``p`` rounded to a multiple of 2**-16), but forward and
    backward are cheaper than with ``rand_like``, whose float draws were a visible share of an epoch at 1M
    accounts (``bernoulli_`` is slower still, and so is ``masked_fill``'s backward)."""
    if p <= 0.0:
        return x
    cut = round(p * 65536)
    words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    keep = words.view(torch.int16)[: x.numel()].view(x.shape) >= cut - 32768
    return x * keep.to(x.dtype) * (65536 / (65536 - cut))


def _mean_weights(edge_index_dict, into_acc, face_weight: torch.Tensor, n: int):
    """Destination account and weight of every edge into accounts, relation after relation: ``1/deg`` per
    relation (mean aggregation; times the face similarity on SAME_FACE), as PyG's mean would divide."""
    dsts, weights = [], []
    for et in into_acc:
        d = edge_index_dict[et][1]
        w = 1.0 / torch.bincount(d, minlength=n).clamp_(min=1).to(torch.float32)[d]
        dsts.append(d)
        weights.append(w * face_weight if et == FACE_EDGE else w)
    if not dsts:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0)
    return torch.cat(dsts), torch.cat(weights).unsqueeze(-1)


def _into_accounts(conv: HeteroConv, h, edge_index_dict, into_acc, dst, weight) -> torch.Tensor:
    """Sum over relations of ``SAGEConv``/``GraphConv`` into accounts, computed as one matmul for all root
    terms (their weights add up) plus messages projected on the small source side before the mean (a linear
    map commutes with it). Per relation, PyG would run two [accounts x hidden] matmuls on mostly empty
    aggregates: at 100k accounts that was 47% of an epoch."""
    h_acc = h[ACCOUNT]
    root, bias, msgs = 0, 0, []
    for et in into_acc:
        c = conv.convs[et]
        src = edge_index_dict[et][0]
        if et == FACE_EDGE:  # GraphConv: lin_rel(mean(w * x_j)) + lin_root(x)
            root, bias = root + c.lin_root.weight, bias + c.lin_rel.bias
            if len(src):  # a relation without edges still adds its root term
                msgs.append(torch.index_select(h_acc, 0, src) @ c.lin_rel.weight.t())
        else:  # SAGEConv: lin_l(mean(x_j)) + lin_r(x)
            root, bias = root + c.lin_r.weight, bias + c.lin_l.bias
            if len(src):
                msgs.append(torch.index_select(h[et[0]] @ c.lin_l.weight.t(), 0, src))
    out = torch.addmm(bias, h_acc, root.t())
    return out.index_add(0, dst, torch.cat(msgs) * weight) if msgs else out


@dataclass
class Scaler:
    """Standardise features; NaN (unknown) becomes 0 after scaling, i.e. the mean.

    A column without any value or with one value only (an optional input absent from the graph,
    ``features.feature_coverage``) gets an infinite scale, so any value scales to 0, the value it had in
    training: its weights were never trained on a value, and a new application that has the input is scored
    as if it had not, instead of through untrained weights."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: NaN here, mapped below
            mean = np.nan_to_num(np.nanmean(x, axis=0)) if len(x) else np.zeros(x.shape[1])
            std = np.nan_to_num(np.nanstd(x, axis=0)) if len(x) else np.zeros(x.shape[1])
        return cls(mean.astype(np.float32), np.where(std > 1e-6, std, np.inf).astype(np.float32))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - torch.from_numpy(self.mean)) / torch.from_numpy(self.std)
        return torch.nan_to_num(z, nan=0.0).clamp(-10, 10)


class GNNModel:
    """scikit-learn style: ``fit(graph, train_mask)``, ``predict_proba(graph) -> [n, 2]``."""

    name = "gnn"

    def __init__(
        self,
        hidden: int = 32,
        layers: int = 2,
        dropout: float = 0.2,
        lr: float = 0.01,
        weight_decay: float = 1e-4,
        max_epochs: int = 300,
        patience: int = 30,
        eval_every: int = 5,
        seed: int = 0,
        verbose: bool = False,
        max_pos_weight: float = 50.0,
        warmup_epochs: int = 5,
        anneal_epochs: int = 150,
        min_lr_ratio: float = 0.05,
        min_delta: float = 1e-3,
        time_budget_s: float | None = None,
    ):
        self.hidden, self.layers, self.dropout = hidden, layers, dropout
        self.lr, self.weight_decay, self.max_epochs, self.patience = lr, weight_decay, max_epochs, patience
        self.eval_every = eval_every
        self.seed, self.verbose = seed, verbose
        self.max_pos_weight = max_pos_weight
        self.warmup_epochs, self.anneal_epochs = warmup_epochs, anneal_epochs
        self.min_lr_ratio, self.min_delta = min_lr_ratio, min_delta
        self.time_budget_s = time_budget_s
        self.net: HeteroGNN | None = None
        self.epochs_: int = 0
        self.best_epoch_: int = 0
        self.best_val_ap_: float = float("nan")
        self.stopped_by_: str = ""
        self._flat: FlatGNN | None = None

    def _inputs(self, data: HeteroData):
        """Scaled features and the edges of the relations the model was trained with, empty ones included.

        Every relation adds its root term (``lin_r(x)`` and a bias) to every account, with or without an edge
        of its own: on the full training graph all of them are there, so a real-time subgraph must pass them
        too. Passing only the relations with edges (as before) left most of the root terms out for a new
        account with few signals, and the GNN scored honest applicants about twice as high in real time as in
        batch (a random 400 held out of 100k: mean 0.15 against 0.069)."""
        x = {nt: (self.acc_scaler if nt == ACCOUNT else self.sig_scaler)(data[nt].x) for nt in NODE_TYPES}
        ei = {et: data[et].edge_index for et in self.relations}
        return x, ei, data[FACE_EDGE].edge_attr

    @property
    def relations(self) -> list[tuple[str, str, str]]:
        """The relations the model was trained with (models saved before kept none: a full graph's)."""
        return getattr(self, "relations_", None) or _LINKING_RELATIONS

    @property
    def epoch_limit(self) -> int:
        """Training ends with the learning-rate schedule: ``anneal_epochs``, or ``max_epochs`` if fewer."""
        return max(1, min(self.max_epochs, self.anneal_epochs))

    def _lr(self, epoch: int, elapsed: float) -> float:
        """Linear warm-up, then cosine decay to ``min_lr_ratio * lr`` by the last epoch or by the end of the
        time budget, whichever comes first, so a run stopped by its time budget has annealed rather than been
        cut off at full learning rate."""
        if epoch < self.warmup_epochs:
            return self.lr * (epoch + 1) / self.warmup_epochs
        done = (epoch + 1 - self.warmup_epochs) / max(self.epoch_limit - self.warmup_epochs, 1)
        if self.time_budget_s:
            done = max(done, elapsed / self.time_budget_s)
        cos = 0.5 * (1.0 + np.cos(np.pi * min(done, 1.0)))
        return self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cos)

    def fit(self, graph: GraphInput, mask: np.ndarray, y: np.ndarray | None = None, groups=None) -> GNNModel:
        with reuse_freed_memory():
            return self._fit(graph, mask, y, groups)

    def _fit(self, graph: GraphInput, mask: np.ndarray, y: np.ndarray | None, groups) -> GNNModel:
        torch.manual_seed(self.seed)
        self._flat = None
        data, _ = graph.hetero
        y = graph.labels if y is None else np.asarray(y, dtype=np.float64)
        idx = np.flatnonzero(np.asarray(mask) & ~np.isnan(y))
        tr, va = validation_split(idx, y, groups, seed=self.seed)
        self.acc_scaler = Scaler.fit(data[ACCOUNT].x.numpy())
        sig = np.concatenate([data[nt].x.numpy() for nt in NODE_TYPES if nt != ACCOUNT])
        self.sig_scaler = Scaler.fit(sig)
        self.net = HeteroGNN(data[ACCOUNT].x.shape[1], sig.shape[1], self.hidden, self.layers, self.dropout)
        self.relations_ = [et for et in EDGE_TYPES if data[et].edge_index.shape[1]]
        x, ei, fw = self._inputs(data)
        yt = torch.from_numpy(np.nan_to_num(y).astype(np.float32))
        pos = max(float(y[tr].sum()), 1.0)
        pos_weight = torch.tensor(min((len(tr) - pos) / pos, self.max_pos_weight))
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        tr_t, va_t, y_tr = torch.from_numpy(tr), torch.from_numpy(va), yt[torch.from_numpy(tr)]
        best, best_state, since, last_gain = -np.inf, None, 0, -np.inf
        self.stopped_by_ = "end of schedule"
        t_start = time.perf_counter()
        for epoch in range(self.epoch_limit):
            elapsed = time.perf_counter() - t_start
            for group in opt.param_groups:
                group["lr"] = self._lr(epoch, elapsed)
            self.net.train()
            opt.zero_grad()
            loss = loss_fn(self.net(x, ei, fw)[tr_t], y_tr)
            loss.backward()
            opt.step()
            elapsed = time.perf_counter() - t_start
            over_budget = self.time_budget_s is not None and elapsed >= self.time_budget_s
            last = epoch == self.epoch_limit - 1 or over_budget
            if (epoch + 1) % self.eval_every and not last:
                continue
            self.net.eval()
            with torch.no_grad():
                p = self.net(x, ei, fw)[va_t].numpy()
            ap = average_precision_score(y[va], p) if 0 < y[va].sum() < len(va) else -float(loss.detach())
            if ap > best:  # the checkpoint follows every gain; patience restarts only on gains >= min_delta
                best, best_state, self.best_epoch_ = ap, copy.deepcopy(self.net.state_dict()), epoch + 1
            if ap >= last_gain + self.min_delta:
                last_gain, since = ap, 0
            else:
                since += self.eval_every
            if self.verbose:
                print(
                    f"epoch {epoch + 1} loss {float(loss.detach()):.4f} val_ap {ap:.4f} "
                    f"lr {opt.param_groups[0]['lr']:.5f} {time.perf_counter() - t_start:.1f} s",
                    flush=True,
                )
            if over_budget:
                self.stopped_by_ = f"time budget ({self.time_budget_s:g} s)"
                break
            if since >= self.patience:
                self.stopped_by_ = "patience"
                break
        self.epochs_ = epoch + 1
        self.best_val_ap_ = best
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net.eval()
        return self

    def logits(self, data: HeteroData) -> np.ndarray:
        assert self.net is not None, "fit or load the model first"
        # full-graph passes allocate tensors of hundreds of MB (graph.learn.heap); a real-time subgraph does not, and
        # skips the malloc_trim on the way out
        big = data[ACCOUNT].num_nodes >= 100_000
        with reuse_freed_memory() if big else contextlib.nullcontext(), torch.no_grad():
            x, ei, fw = self._inputs(data)
            return self.net(x, ei, fw).numpy()

    def predict_small(self, graph: SmallGraph) -> np.ndarray:
        """Probabilities of a real-time receptive field's accounts, in numpy (``graph.learn.small_gnn``)."""
        if getattr(self, "_flat", None) is None:
            self._flat = FlatGNN(self)
        return 1.0 / (1.0 + np.exp(-self._flat.logits(graph).astype(np.float64)))

    def predict_new(self, new) -> np.ndarray:
        """Each new account on its own receptive field (``graph.learn.scoring.NewAccounts.field``)."""
        return np.array([float(self.predict_small(new.field(i))[0]) for i in range(new.n)])

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_flat"}  # rebuilt on first use

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._flat = None

    def predict_proba(self, graph: GraphInput | HeteroData) -> np.ndarray:
        data = graph.hetero[0] if isinstance(graph, GraphInput) else graph
        p = 1.0 / (1.0 + np.exp(-self.logits(data).astype(np.float64)))
        return np.column_stack([1 - p, p])
