"""Readers on small fixtures (plain and gzip), including every kind of bad input."""

from __future__ import annotations

import gzip
import json

import pytest

from kerasllm.data.corpus import UNLABELLED
from kerasllm.data.readers import (
    read_conversations,
    read_labelled,
    read_lines,
    read_parallel,
    read_squad,
    read_text,
    read_tsv_pairs,
)


def write(path, data: bytes | str, compress: bool = False):
    data = data.encode("utf-8") if isinstance(data, str) else data
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture(params=[False, True], ids=["plain", "gzip"])
def compress(request) -> bool:
    return request.param


def test_parallel_files_pairs_lines(tmp_path, compress):
    source = write(tmp_path / "a.en", "A dog runs.\nTwo men.\n", compress)
    target = write(tmp_path / "a.de", "Ein Hund rennt.\nZwei Männer.\n", compress)
    corpus = read_parallel(source, target, source_name="en", target_name="de")
    assert list(corpus) == [("A dog runs.", "Ein Hund rennt."), ("Two men.", "Zwei Männer.")]
    assert (corpus.source_name, corpus.target_name) == ("en", "de")
    assert (corpus.report.read, corpus.report.kept, corpus.report.dropped_empty, corpus.report.invalid_utf8) == (
        2,
        2,
        0,
        0,
    )


def test_byte_order_mark_and_crlf_are_not_text(tmp_path):
    path = write(tmp_path / "excel.csv", b"\xef\xbb\xbftext,label\r\nfine,1\r\n")
    corpus = read_labelled(path, text_field="text", label_field="label")
    assert list(corpus) == [("fine", 0)] and corpus.label_names == ["1"]


def test_gzip_is_detected_by_content_not_name(tmp_path):
    path = write(tmp_path / "lines.txt", "one\ntwo\n", compress=True)
    assert read_lines(path)[0] == ["one", "two"]


def test_misaligned_parallel_files_name_both_files_and_counts(tmp_path, compress):
    source = write(tmp_path / "train.en", "a\nb\nc\n", compress)
    target = write(tmp_path / "train.de", "x\ny\n", compress)
    with pytest.raises(ValueError) as error:
        read_parallel(source, target)
    message = str(error.value)
    assert str(source) in message and str(target) in message
    assert "3 lines" in message and "2 lines" in message
    assert "\n" not in message


def test_empty_lines_and_pairs_are_dropped_and_counted(tmp_path, compress):
    source = write(tmp_path / "s", "one\n\n   \nfour\nfive\n", compress)
    target = write(tmp_path / "t", "un\ndeux\ntrois\n\t\ncinq\n", compress)
    corpus = read_parallel(source, target)
    assert list(corpus) == [("one", "un"), ("five", "cinq")]
    assert (corpus.report.read, corpus.report.dropped_empty, corpus.report.kept) == (5, 3, 2)


def test_invalid_utf8_is_replaced_and_counted(tmp_path, compress):
    path = write(tmp_path / "bad.tsv", b"caf\xe9\tcaf\xc3\xa9\nok\tbien\n\xff\xfe\tx\n", compress)
    corpus = read_tsv_pairs(path)
    assert corpus.sources == ["caf\ufffd", "ok", "\ufffd\ufffd"]
    assert corpus.targets[0] == "café"
    assert corpus.report.invalid_utf8 == 2


def test_empty_file_gives_an_empty_corpus_and_is_counted(tmp_path, compress):
    source = write(tmp_path / "empty.en", b"", compress)
    target = write(tmp_path / "empty.de", b"", compress)
    corpus = read_parallel(source, target)
    assert len(corpus) == 0 and list(corpus) == []
    assert (corpus.report.read, corpus.report.empty_files) == (0, 2)
    assert len(read_text(source)) == 0
    assert read_tsv_pairs(source).report.empty_files == 1


def test_missing_file_says_where_it_looked(tmp_path):
    missing = tmp_path / "nowhere" / "train.en.gz"
    with pytest.raises(FileNotFoundError, match=str(missing.resolve())):
        read_lines(missing)


def test_tsv_pairs_columns_and_extra_columns(tmp_path, compress):
    path = write(tmp_path / "fra.tsv", "Go.\tVa !\tCC-BY 2.0 (France) Attribution\n\nRun!\tCours !\n", compress)
    assert list(read_tsv_pairs(path)) == [("Go.", "Va !"), ("Run!", "Cours !")]
    assert list(read_tsv_pairs(path, columns=(1, 0)))[0] == ("Va !", "Go.")
    assert read_tsv_pairs(path).report.dropped_empty == 1


def test_tsv_row_with_too_few_columns_names_file_and_line(tmp_path):
    path = write(tmp_path / "pairs.tsv", "Go.\tVa !\nno tab here\n")
    with pytest.raises(ValueError, match=r"pairs\.tsv line 2: expected at least 2"):
        read_tsv_pairs(path)


def test_labelled_tsv_with_header(tmp_path, compress):
    path = write(
        tmp_path / "dev.tsv.gz" if compress else tmp_path / "dev.tsv",
        "sentence\tlabel\ngood \t1\nbad \t0\n\t1\n",
        compress,
    )
    corpus = read_labelled(path, text_field="sentence", label_field="label", label_values=["0", "1"])
    assert list(corpus) == [("good", 1), ("bad", 0)]
    assert corpus.label_names == ["0", "1"]
    assert corpus.report.dropped_empty == 1


def test_labelled_csv_without_header_joins_fields(tmp_path, compress):
    path = write(tmp_path / "test.csv", '"3","Title, with comma","Body ""quoted"""\n"1","World","News"\n', compress)
    corpus = read_labelled(path, text_field=(1, 2), label_field=0, header=False)
    assert corpus.texts == ['Title, with comma Body "quoted"', "World News"]
    assert corpus.label_names == ["1", "3"]  # sorted distinct values when not given
    assert corpus.labels == [1, 0]


def test_labelled_json_and_jsonl(tmp_path, compress):
    records = [{"text": "spam offer", "label": "spam"}, {"text": "hi mum", "label": "ham"}]
    as_json = write(tmp_path / "data.json", json.dumps(records), compress)
    as_jsonl = write(tmp_path / "data.jsonl", "\n".join(map(json.dumps, records)) + "\n\n", compress)
    for path in (as_json, as_jsonl):
        corpus = read_labelled(path, text_field="text", label_field="label", label_values=["ham", "spam"])
        assert list(corpus) == [("spam offer", 1), ("hi mum", 0)]
    assert read_labelled(as_jsonl, text_field="text", label_field="label").report.dropped_empty == 1


def test_labelled_errors_are_clear(tmp_path):
    path = write(tmp_path / "data.tsv", "sentence\tlabel\ngood\t7\n")
    with pytest.raises(ValueError, match=r"unexpected label value\(s\) \['7'\]"):
        read_labelled(path, text_field="sentence", label_field="label", label_values=["0", "1"])
    with pytest.raises(ValueError, match="no field 'text'"):
        read_labelled(path, text_field="text", label_field="label")
    with pytest.raises(ValueError, match="cannot tell the format"):
        read_labelled(write(tmp_path / "data.txt", "x"), text_field=0, label_field=1)
    with pytest.raises(ValueError, match="line 1: not valid JSON"):
        read_labelled(write(tmp_path / "bad.jsonl", "{oops\n"), text_field="t", label_field="l")


def test_unlabelled_file(tmp_path):
    path = write(tmp_path / "test.tsv", "index\tsentence\n0\tfine film\n")
    corpus = read_labelled(path, text_field="sentence", label_field=None)
    assert corpus.labels == [UNLABELLED]


def test_plain_text_keeps_text_and_counts_blank_lines(tmp_path, compress):
    path = write(tmp_path / "input.txt", "First Citizen:\nBefore we proceed.\n\nAll:\nSpeak.\n", compress)
    corpus = read_text(path)
    assert corpus.text == "First Citizen:\nBefore we proceed.\n\nAll:\nSpeak.\n"
    assert corpus.lines == ["First Citizen:", "Before we proceed.", "All:", "Speak."]
    assert (corpus.report.read, corpus.report.dropped_empty) == (5, 1)


def test_squad_records(tmp_path, compress):
    document = {
        "version": "1.1",
        "data": [
            {
                "title": "Paris",
                "paragraphs": [
                    {
                        "context": "Paris is the capital of France.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "What is Paris?",
                                "answers": [{"text": "the capital of France", "answer_start": 9}],
                            },
                            {"id": "q2", "question": "  ", "answers": []},
                        ],
                    }
                ],
            }
        ],
    }
    corpus = read_squad(write(tmp_path / "dev.json", json.dumps(document), compress))
    assert len(corpus) == 1 and corpus.report.dropped_empty == 1
    record = corpus[0]
    assert record.context[record.answer_starts[0] :].startswith(record.answers[0])


def test_conversations_become_consecutive_pairs_with_string_utterances(tmp_path, compress):
    yaml_text = "categories:\n- test\nconversations:\n- - Are you a robot?\n  - yes\n- - What is 2+2?\n  - 4\n  - Correct.\n- - ''\n  - empty prompt\n"
    corpus = read_conversations([write(tmp_path / "a.yml", yaml_text, compress)])
    assert list(corpus) == [("Are you a robot?", "yes"), ("What is 2+2?", "4"), ("4", "Correct.")]
    assert (corpus.source_name, corpus.target_name) == ("prompt", "response")
    assert (corpus.report.read, corpus.report.dropped_empty) == (4, 1)


def test_invalid_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not valid YAML"):
        read_conversations([write(tmp_path / "bad.yml", "conversations: [unclosed\n")])
