"""Failures nobody caught by name are classified once, where they are caught, by one rule per class (the
classes a campaign report counts); what no rule claims is a bug."""

import pytest
from aperture_contracts.enums import ErrorClass
from aperture_shared.errors import FAILURE_RULES, classify_unexpected

# Messages as CASA 6.7 and casacore word them.
EXAMPLES = [
    (RuntimeError("Table DataManager error: Invalid operation: MSM: no array in row 0 of column DATA"),
     ErrorClass.CORRUPT_INPUT),
    (RuntimeError("Table /data/x.ms/SPECTRAL_WINDOW does not exist"), ErrorClass.CORRUPT_INPUT),
    (RuntimeError("BucketFile: unexpected end of file while reading table.f0"), ErrorClass.CORRUPT_INPUT),
    (RuntimeError("Error in data selection specification: MSSelectionNullSelection : The selected table has "
                  "zero rows."), ErrorClass.NO_VISIBILITIES),
    (RuntimeError("Data selection ended with 0 rows"), ErrorClass.NO_VISIBILITIES),
    (RuntimeError("No valid rows found in the selection"), ErrorClass.NO_VISIBILITIES),
    (MemoryError(), ErrorClass.OUT_OF_MEMORY),
    (RuntimeError("std::bad_alloc"), ErrorClass.OUT_OF_MEMORY),
    (KeyError("spw_ids"), ErrorClass.INTERNAL),
    (ZeroDivisionError("float division by zero"), ErrorClass.INTERNAL),
]


@pytest.mark.parametrize(
    ("error", "error_class"), EXAMPLES, ids=[f"{c.value}-{i}" for i, (_, c) in enumerate(EXAMPLES)]
)
def test_each_failure_gets_its_class_and_a_message_saying_what_to_do(error, error_class):
    classified = classify_unexpected(error, "CASA step make_image")
    assert classified.error_class is error_class
    assert classified.message.startswith(f"CASA step make_image raised {type(error).__name__}")
    if error_class is ErrorClass.INTERNAL:
        assert "a bug" in classified.message
    else:
        rule = next(rule for rule in FAILURE_RULES if rule.error_class is error_class)
        assert classified.message.endswith(rule.advice)


def test_the_rules_are_one_per_class_and_none_claims_the_others():
    classes = [rule.error_class for rule in FAILURE_RULES]
    assert len(classes) == len(set(classes))
    for error, error_class in EXAMPLES:
        claiming = [rule.error_class for rule in FAILURE_RULES if rule.matches(error)]
        assert claiming == ([] if error_class is ErrorClass.INTERNAL else [error_class]), (error, claiming)
