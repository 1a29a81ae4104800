"""The best value of every epoch metric so far, and the headline metric that best.pt follows."""

from typing import Dict, Optional

from gdrun.training import metrics


class Best:
    """The best value of every epoch metric so far (lowest loss, highest accuracy, ...) and its epoch.

    The headline metric, the one `best.pt` follows, is select.metric when set, else validation
    accuracy for classification with a validation set, validation loss for regression with one,
    else the training metric (training.metrics.headline).
    """

    def __init__(self, has_val: bool, classification: bool, headline: Optional[str] = None):
        task = "multiclass" if classification else "regression"
        self.headline = headline or metrics.headline(task, has_val)
        self.by_metric: Dict[str, Dict] = {}

    def update(self, row: Dict) -> bool:
        """Take an epoch row; True when the headline metric improved."""
        improved = False
        for name, value in row.items():
            if metrics.metric_of(name) is None or value is None:
                continue
            best = self.by_metric.get(name)
            if best is not None and not metrics.better(name, value, best["value"]):
                continue
            self.by_metric[name] = {"value": value, "epoch": row["epoch"]}
            improved |= name == self.headline
        return improved

    def state(self) -> Dict:
        return {"headline": self.headline, "by_metric": dict(self.by_metric)}

    def load(self, state: Dict) -> None:
        self.headline, self.by_metric = state["headline"], dict(state["by_metric"])
