import pytest

from stairways.cli.seeds import split_greedy
from stairways.errors import InputError


def test_seeds_and_splits_given_as_word_lists_are_separated() -> None:
    seeds, splits = split_greedy(["0"], ["test"], ["1", "2", "3", "eval_feb2024"])
    assert seeds == [0, 1, 2, 3]
    assert splits == ["test", "eval_feb2024"]


def test_commas_separate_values_too() -> None:
    assert split_greedy(["0,1,2"], [], []) == ([0, 1, 2], [])


def test_stray_words_without_splits_option_then_input_error() -> None:
    with pytest.raises(InputError, match="follow --splits"):
        split_greedy(["0"], [], ["1", "oops"])
