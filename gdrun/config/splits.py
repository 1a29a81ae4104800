"""What a run's held-out set is called: MNIST's and Fashion-MNIST's is their official test split.

Read from the config alone (no torch), so the console, summary.json and the pictures drawn
later from the run folder all name it the same way.
"""

from typing import Any

# The data whose held-out set is the dataset's own test split (unless data.val_split replaces it).
TEST_SPLIT_TARGETS = ("gdrun.training.datasets.images.torchvision_dataset",)


def held_out_name(config: Any) -> str:
    """ "test" when the run validates on its dataset's official test split, else "validation"."""
    try:
        data = config["data"]
        official = data["_target_"] in TEST_SPLIT_TARGETS and not data.get("val_split")
    except (KeyError, TypeError, AttributeError):  # an old or foreign config: the usual name
        return "validation"
    return "test" if official else "validation"
