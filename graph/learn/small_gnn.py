"""The trained GNN on one new account's receptive field, as numpy arrays.

A real-time decision scores a subgraph of a few dozen nodes. Through ``HeteroData`` and PyG each account paid
for building the object, then per relation and per layer a few torch calls on tiny tensors, which under the
API benchmark's load filled the decision worker. Here every relation's weights are stacked by signal kind,
so a layer is a handful of numpy calls whatever the number of relations: the same function as
``HeteroGNN.forward`` in eval mode (``tests/graph/test_small_gnn.py`` holds them equal), at a fraction of the
cost. Full-graph training and batch scoring keep PyG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graph.learn.hetero import ACCOUNT, FACE_EDGE, rel_edge, rev_edge
from graph.schema import SIGNALS


@dataclass
class SmallGraph:
    """Accounts (row 0 is the one scored) and signal nodes, with raw (unscaled) features.

    ``link_account[e]`` is a member of ``link_signal[e]`` (message passing runs both ways); ``kind`` is the
    index in ``graph.schema.SIGNALS`` of each signal node; face links are undirected, one row per pair.
    """

    x_account: np.ndarray
    x_signal: np.ndarray
    kind: np.ndarray
    link_account: np.ndarray
    link_signal: np.ndarray
    face_a: np.ndarray
    face_b: np.ndarray
    face_sim: np.ndarray


def _np(t) -> np.ndarray:
    return t.detach().numpy().astype(np.float32)


def _norm(z: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mu = z.mean(axis=-1, keepdims=True)
    var = ((z - mu) ** 2).mean(axis=-1, keepdims=True)
    return (z - mu) / np.sqrt(var + eps) * gamma + beta


def _project(w: np.ndarray, kind: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Row ``i`` of ``h`` through the weight of its kind: ``w[kind[i]] @ h[i]``."""
    return np.matmul(w[kind], h[:, :, None])[:, :, 0]


def _mean_into(dst: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per edge, 1 / the number of edges of its group (relation) into its destination, as PyG's mean."""
    key = dst * (int(group.max(initial=0)) + 1) + group
    _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    return (1.0 / counts[inv]).astype(np.float32)


class FlatGNN:
    """A fitted ``GNNModel``'s network in eval mode; ``logits(graph) -> [accounts]``."""

    def __init__(self, model) -> None:
        net = model.net
        relations = set(model.relations)
        k = len(SIGNALS)
        self.acc_mean, self.acc_std = model.acc_scaler.mean, model.acc_scaler.std
        self.sig_mean, self.sig_std = model.sig_scaler.mean, model.sig_scaler.std
        self.enc_acc_w, self.enc_acc_b = _np(net.enc[ACCOUNT].weight).T, _np(net.enc[ACCOUNT].bias)
        self.enc_sig_w = np.stack([_np(net.enc[s.label].weight) for s in SIGNALS])
        self.enc_sig_b = np.stack([_np(net.enc[s.label].bias) for s in SIGNALS])
        # which relations the model was trained with: the others take no part, as in GNNModel._inputs
        self.fwd = np.array([rel_edge(s.label, s.rel) in relations for s in SIGNALS])
        self.rev = np.array([rev_edge(s.label, s.rel) in relations for s in SIGNALS])
        self.face = FACE_EDGE in relations
        self.into_acc = bool(self.rev.any() or self.face)
        self.layers = []
        hidden = self.enc_acc_b.shape[0]
        zeros = np.zeros((k, hidden, hidden), np.float32)
        for conv, norm in zip(net.convs, net.norms, strict=True):
            c = conv.convs
            layer = {
                "fwd_l": zeros.copy(),
                "fwd_b": np.zeros((k, hidden), np.float32),
                "fwd_r": zeros.copy(),
                "rev_l": zeros.copy(),
                "root": np.zeros((hidden, hidden), np.float32),
                "bias": np.zeros(hidden, np.float32),
                "norm_acc": (_np(norm[ACCOUNT].weight), _np(norm[ACCOUNT].bias), norm[ACCOUNT].eps),
                "norm_sig_g": np.stack([_np(norm[s.label].weight) for s in SIGNALS]),
                "norm_sig_b": np.stack([_np(norm[s.label].bias) for s in SIGNALS]),
                "norm_sig_eps": norm[SIGNALS[0].label].eps,
            }
            for i, s in enumerate(SIGNALS):
                f, r = c[rel_edge(s.label, s.rel)], c[rev_edge(s.label, s.rel)]
                if self.fwd[i]:
                    layer["fwd_l"][i], layer["fwd_b"][i] = _np(f.lin_l.weight), _np(f.lin_l.bias)
                    layer["fwd_r"][i] = _np(f.lin_r.weight)
                if self.rev[i]:  # every relation into accounts adds its root term, edges or not
                    layer["rev_l"][i] = _np(r.lin_l.weight)
                    layer["root"] += _np(r.lin_r.weight)
                    layer["bias"] += _np(r.lin_l.bias)
            if self.face:
                g = c[FACE_EDGE]
                layer["face_rel"], layer["face_rel_b"] = _np(g.lin_rel.weight).T, _np(g.lin_rel.bias)
                layer["root"] += _np(g.lin_root.weight)
                layer["bias"] += layer["face_rel_b"]
            layer["root"] = layer["root"].T.copy()
            self.layers.append(layer)
        h = net.head
        self.head1_w, self.head1_b = _np(h[0].weight).T, _np(h[0].bias)
        self.head2_w, self.head2_b = _np(h[3].weight)[0], float(h[3].bias.detach()[0])

    def logits(self, g: SmallGraph) -> np.ndarray:
        kind = np.asarray(g.kind, dtype=np.intp)
        x_acc = np.nan_to_num((g.x_account - self.acc_mean) / self.acc_std, nan=0.0).clip(-10, 10)
        x_sig = np.nan_to_num((g.x_signal - self.sig_mean) / self.sig_std, nan=0.0).clip(-10, 10)
        h_acc = np.maximum(x_acc.astype(np.float32) @ self.enc_acc_w + self.enc_acc_b, 0)
        h_sig = np.maximum(_project(self.enc_sig_w, kind, x_sig.astype(np.float32)) + self.enc_sig_b[kind], 0)
        h0 = h_acc
        la, ls = np.asarray(g.link_account, np.intp), np.asarray(g.link_signal, np.intp)
        link_kind = kind[ls]
        up, down = self.fwd[link_kind], self.rev[link_kind]
        up_a, up_s = la[up], ls[up]  # account -> signal
        dn_a, dn_s = la[down], ls[down]  # signal -> account
        w_dn = _mean_into(dn_a, link_kind[down])[:, None]
        if self.face and len(g.face_a):
            fa = np.concatenate([g.face_a, g.face_b]).astype(np.intp)
            fb = np.concatenate([g.face_b, g.face_a]).astype(np.intp)
            fsim = np.concatenate([g.face_sim, g.face_sim]).astype(np.float32)
            w_face = (fsim * _mean_into(fb, np.zeros(len(fb), np.intp)))[:, None]
        else:
            fa = fb = np.zeros(0, np.intp)
        up_count = np.bincount(up_s, minlength=len(h_sig)).astype(np.float32)[:, None]
        sig_updated = self.fwd[kind][:, None]
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            if self.into_acc:
                out = h_acc @ layer["root"] + layer["bias"]
                if len(dn_a):
                    msg = _project(layer["rev_l"], kind, h_sig)
                    np.add.at(out, dn_a, msg[dn_s] * w_dn)
                if len(fa):
                    np.add.at(out, fb, (h_acc[fa] @ layer["face_rel"]) * w_face)
                new_acc = _norm(h_acc + np.maximum(out, 0), *layer["norm_acc"])
            else:
                new_acc = h_acc
            if not last and len(h_sig):
                agg = np.zeros_like(h_sig)
                np.add.at(agg, up_s, h_acc[up_a])
                agg /= np.maximum(up_count, 1)
                o = _project(layer["fwd_l"], kind, agg) + _project(layer["fwd_r"], kind, h_sig)
                o += layer["fwd_b"][kind]
                gamma, beta = layer["norm_sig_g"][kind], layer["norm_sig_b"][kind]
                z = _norm(h_sig + np.maximum(o, 0), gamma, beta, layer["norm_sig_eps"])
                h_sig = np.where(sig_updated, z, h_sig)
            h_acc = new_acc
        z = np.maximum(np.concatenate([h0, h_acc], axis=1) @ self.head1_w + self.head1_b, 0)
        return z @ self.head2_w + self.head2_b
