"""Case review in Neo4j Browser: the investigators' saved queries, the style sheet, and its band labels.

Browser's style sheets (GraSS) select on labels only, never on property values. To colour accounts by
``risk_score`` and size rings by ``score``, each scored node also carries one band label (``RiskHigh`` /
``RiskMedium`` / ``RiskLow`` on accounts, ``RingHigh`` / ``RingMedium`` / ``RingLow`` on rings), refreshed by
:func:`apply_bands` after each scoring run. Queries never match on band labels; they exist for the eye.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from graph.store.bolt import GraphStore

HERE = Path(__file__).resolve().parent
SAVED_QUERIES_PATH = HERE / "saved_queries.cypher"
STYLE_PATH = HERE / "style.grass"

# (node label, score property, {band: label}); bands are high >= high_cut > medium >= medium_cut > low
BANDED = (
    ("Account", "risk_score", {"high": "RiskHigh", "medium": "RiskMedium", "low": "RiskLow"}),
    ("Ring", "score", {"high": "RingHigh", "medium": "RingMedium", "low": "RingLow"}),
)
_PARAM = re.compile(r"^:param\s+(\w+)\s*=>\s*(.+?);?\s*$")


@dataclass(frozen=True)
class SavedQuery:
    name: str
    description: str
    params: dict[str, str]  # parameter name -> Cypher literal of its default
    query: str

    def browser_text(self) -> str:
        """One Browser favorite: the title comment Browser names it by, the :param lines, then the query."""
        lines = [f"// {self.name}", f"// {self.description}"]
        lines += [f":param {k} => {v};" for k, v in self.params.items()]
        return "\n".join([*lines, self.query + ";"]) + "\n"

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")


def load_saved_queries(path: Path = SAVED_QUERIES_PATH) -> list[SavedQuery]:
    """Parse the blocks of ``saved_queries.cypher`` (each starts with ``// name:``)."""
    blocks = re.split(r"^// name:", path.read_text(), flags=re.MULTILINE)[1:]
    queries = []
    for block in blocks:
        name, *rest = block.strip().splitlines()
        description, params, body = [], {}, []
        for line in rest:
            if match := _PARAM.match(line.strip()):
                params[match.group(1)] = match.group(2)
            elif line.startswith("//") and not body:
                description.append(line.lstrip("/ ").strip())
            else:
                body.append(line)
        query = "\n".join(body).strip().rstrip(";").strip()
        queries.append(SavedQuery(name.strip(), " ".join(description), params, query))
    return queries


def write_favorites(out_dir: Path) -> list[Path]:
    """One ``.cypher`` file per saved query (Browser makes each dropped file one favorite), plus the style."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, saved in enumerate(load_saved_queries(), start=1):
        path = out_dir / f"{i:02d}_{saved.slug}.cypher"
        path.write_text(saved.browser_text())
        written.append(path)
    style = out_dir / STYLE_PATH.name
    style.write_text(STYLE_PATH.read_text())
    return [*written, style]


def apply_bands(store: GraphStore, high: float = 0.8, medium: float = 0.5) -> dict[str, int]:
    """Give every scored account and ring the one band label that matches its score; returns changes per label.

    Reads ids and scores once, then relabels only nodes whose band changed, in batched transactions, so a
    re-run after a small rescoring touches little.
    """
    if not 0.0 <= medium <= high <= 1.0:
        raise ValueError(f"need 0 <= medium <= high <= 1, got medium={medium}, high={high}")
    changed: dict[str, int] = {}
    for label, prop, bands in BANDED:
        rows = store.read(
            f"MATCH (n:{label}) WHERE n.{prop} IS NOT NULL "
            f"RETURN n.id AS id, n.{prop} AS score, n.style_band AS band"
        )
        by_band: dict[str, list[dict]] = {band: [] for band in bands}
        for row in rows:
            band = "high" if row["score"] >= high else "medium" if row["score"] >= medium else "low"
            if band != row["band"]:
                by_band[band].append({"id": row["id"]})
        all_labels = ":".join(bands.values())
        for band, ids in by_band.items():
            # Two transactions: ArcadeDB rejects removing and adding labels of one node in the same one.
            # A crash in between leaves style_band stale, so the next run relabels those nodes.
            store.write_batches(
                f"UNWIND $rows AS row MATCH (n:{label} {{id: row.id}}) REMOVE n:{all_labels}", ids
            )
            changed[bands[band]] = store.write_batches(
                f"UNWIND $rows AS row MATCH (n:{label} {{id: row.id}}) SET n:{bands[band]}, n.style_band = '{band}'",
                ids,
            )
    return changed
