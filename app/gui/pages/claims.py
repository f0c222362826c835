"""Claims: check a sentence such as "B ≥ 0.8 × A on tokens/s" on stored runs.

A claim is data (``wattbench.domain.claim``): two sides (key=value lists of device, runtime,
model, tag, batch, ids), a metric, a relation and a factor — typed here, or read from a TOML
file of [[claim]] tables (docs/claims.md). The controller evaluates the claims on its database
thread (``Controller.check_claims``); each comes back confirmed, refuted, inconclusive or
unreliable with the ratio's interval, the runs behind each side and why. The texts are the
CLI's (``service.claim_text``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from wattbench.domain.claim import (
    MAX_FILE_BYTES,
    Claim,
    claims_from_toml,
    parse_side,
)
from wattbench.domain.errors import BadInputError, WattbenchError
from wattbench.gui import theme
from wattbench.gui.controller import Controller
from wattbench.gui.widgets.banner import Banner, Level
from wattbench.service.claim_text import (
    ClaimResult,
    claim_title,
    metric_choices,
    ratio_text,
    side_text,
    verdict_text,
)

log = logging.getLogger(__name__)

HEADERS = ("Claim", "B / A (95 % interval)", "Verdict", "Why", "Runs per side")
COL_CLAIM, COL_RATIO, COL_VERDICT, COL_WHY, COL_RUNS = range(len(HEADERS))
# a verdict's colour: the compare view's words for the same standing
VERDICT_WORDS = {"confirmed": "better", "refuted": "worse"}
FILE_FILTER = "Claims (*.toml);;All files (*)"


class ClaimsPage(QWidget):
    """Type a claim or load a claims file; the verdicts in a table."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.results: list[ClaimResult] = []
        self._build()
        controller.claimsChecked.connect(self._on_checked)
        controller.claimsFailed.connect(self._on_failed)
        theme.watcher().on_change(self._recolour)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(
            "A vendor's sentence such as “the MI250 gives 80 % of an A100's throughput” is a "
            "ratio between two configurations on one metric. Write each side as key=value "
            "pairs (device, runtime, model, tag, batch, ids), choose the metric and the "
            "factor, and check it on your stored runs: confirmed or refuted when the 95 % "
            "interval of B / A lies wholly on one side of the factor, else inconclusive (with "
            "the runs that would settle it); unreliable when a run was flagged.",
            self,
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.banner = Banner(self, fold=3)
        layout.addWidget(self.banner)

        form = QFormLayout()
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("optional, e.g. MI250 at 80 % of an A100")
        form.addRow("Name:", self.name_edit)
        self.a_edit = QLineEdit(self)
        self.a_edit.setPlaceholderText("e.g. device=cuda:0,tag=a100")
        self.a_edit.setAccessibleName("Side A")
        form.addRow("Side A:", self.a_edit)
        self.b_edit = QLineEdit(self)
        self.b_edit.setPlaceholderText("e.g. device=cpu,runtime=onnxruntime  or  ids=1a2b3c+4d5e6f")
        self.b_edit.setAccessibleName("Side B")
        form.addRow("Side B:", self.b_edit)
        self.metric_combo = QComboBox(self)
        self.metric_combo.setAccessibleName("Metric")
        for name, label in metric_choices():
            self.metric_combo.addItem(f"{name} — {label}" if label != name else name, name)
        self.metric_combo.setCurrentIndex(max(0, self.metric_combo.findData("throughput")))
        form.addRow("Metric:", self.metric_combo)
        self.relation_combo = QComboBox(self)
        self.relation_combo.addItem("≥", "≥")
        self.relation_combo.addItem("≤", "≤")
        self.relation_combo.setAccessibleName("Relation")
        self.factor_edit = QLineEdit("1", self)
        self.factor_edit.setAccessibleName("Factor")
        self.factor_edit.setMaximumWidth(90)
        expression = QHBoxLayout()
        expression.addWidget(QLabel("B", self))
        expression.addWidget(self.relation_combo)
        expression.addWidget(self.factor_edit)
        expression.addWidget(QLabel("× A", self))
        expression.addStretch(1)
        form.addRow("Claim:", expression)
        self.energy_combo = QComboBox(self)
        self.energy_combo.addItem("Device energy (the run's own device)", "device")
        self.energy_combo.addItem("System energy (every measured domain)", "system")
        self.energy_combo.setToolTip("Which energy the per-joule and per-dollar metrics use.")
        form.addRow("Energy:", self.energy_combo)
        form_box = QWidget(self)
        form_box.setLayout(form)
        form_box.setMaximumWidth(760)
        layout.addWidget(form_box)

        buttons = QHBoxLayout()
        self.check_button = QPushButton("Check", self)
        self.check_button.setDefault(True)
        self.check_button.setToolTip("Check this claim on the stored runs")
        self.check_button.clicked.connect(self.check)
        self.load_button = QPushButton("Load claims file…", self)
        self.load_button.setToolTip("Check every [[claim]] of a TOML file (see docs/claims.md)")
        self.load_button.clicked.connect(self._choose_file)
        buttons.addWidget(self.check_button)
        buttons.addWidget(self.load_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.table = QTableWidget(0, len(HEADERS), self)
        self.table.setAccessibleName("Checked claims")
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft)
        for col in (COL_RATIO, COL_VERDICT):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_WHY, QHeaderView.ResizeMode.Stretch)
        for col, width in ((COL_CLAIM, 230), (COL_RUNS, 230)):  # their text wraps
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, width)
        layout.addWidget(self.table, 1)

    # ------------------------------------------------------------------ claims in
    def claim_from_form(self) -> Claim:
        """The claim the fields describe (BadInputError with a message when they cannot)."""
        a, b = self.a_edit.text().strip(), self.b_edit.text().strip()
        if not a or not b:
            raise BadInputError(
                "Give both sides, e.g. side A device=cuda:0,tag=a100 and side B device=cpu."
            )
        text = self.factor_edit.text().strip().replace(",", ".")
        try:
            factor = float(text)
        except ValueError:
            raise BadInputError(f"Factor: {text!r} is not a number.", field="factor") from None
        return Claim(
            parse_side(a),
            parse_side(b),
            str(self.metric_combo.currentData()),
            str(self.relation_combo.currentData()),
            factor,
            self.name_edit.text().strip(),
        )

    def check(self) -> None:
        """Check the claim of the fields; a bad one is said in the banner, nothing changes."""
        try:
            claim = self.claim_from_form()
        except WattbenchError as exc:
            self.banner.show_message(str(exc), Level.ERROR)
            return
        self._ask([claim])

    def load_claims_file(self, path: str | Path) -> None:
        """Check every claim of a TOML claims file (read as data, nothing in it runs)."""
        path = Path(path)
        try:
            try:
                with path.open("rb") as f:
                    data = f.read(MAX_FILE_BYTES + 1)  # a larger file is refused by size
                text = data.decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise BadInputError(f"Cannot read the claims file {path}: {exc}.") from None
            claims = claims_from_toml(text)
        except WattbenchError as exc:
            self.banner.show_message(str(exc), Level.ERROR)
            return
        self._ask(claims)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load claims", "", FILE_FILTER)
        if path:
            self.load_claims_file(path)

    def _ask(self, claims: list[Claim]) -> None:
        n = len(claims)
        self.banner.show_message(f"Checking {n} claim{'' if n == 1 else 's'}…", Level.INFO)
        self.check_button.setEnabled(False)
        self.load_button.setEnabled(False)
        self.controller.check_claims(claims, energy_view=str(self.energy_combo.currentData()))

    # ------------------------------------------------------------------ verdicts out
    def _done(self) -> None:
        self.check_button.setEnabled(True)
        self.load_button.setEnabled(True)

    def _on_failed(self, message: str) -> None:
        self._done()
        self.banner.show_message(message, Level.ERROR)

    def _on_checked(self, results: list[ClaimResult]) -> None:
        self._done()
        self.banner.clear()
        self.results = list(results)
        t = self.table
        t.setRowCount(len(self.results))
        for row, r in enumerate(self.results):
            cells = (
                claim_title(r),
                ratio_text(r, sep="\n"),
                verdict_text(r, sep="\n"),
                r.why,
                f"A: {side_text(r.a, ids=False)}\nB: {side_text(r.b, ids=False)}",
            )
            tips = (
                f"{claim_title(r)}\nA: {r.claim.a.describe()}\nB: {r.claim.b.describe()}",
                ratio_text(r),
                verdict_text(r),
                r.why,
                f"A: {side_text(r.a)}\nB: {side_text(r.b)}",
            )
            for col, (text, tip) in enumerate(zip(cells, tips, strict=True)):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                t.setItem(row, col, item)
        self._recolour()
        t.resizeRowsToContents()

    def _recolour(self) -> None:
        bold = QFont(self.table.font())
        bold.setBold(True)
        for row, r in enumerate(self.results):
            item = self.table.item(row, COL_VERDICT)
            if item is None:
                continue
            colour = theme.verdict_colour(VERDICT_WORDS.get(r.verdict, r.verdict))
            item.setForeground(QBrush(QColor(colour)) if colour else QBrush())
            item.setFont(bold)

    def verdicts(self) -> list[str]:
        """The verdict column as shown (for tests and accessibility)."""
        return [
            item.text() if (item := self.table.item(row, COL_VERDICT)) is not None else ""
            for row in range(self.table.rowCount())
        ]
