"""The registry of corpora: where each one lives, its splits, checksums, canonical URLs and licence.

`load(name, split, pair, data_dir)` reads a corpus from the local data root; nothing is ever
downloaded. The data root is, in order: the `data_dir` argument, `$KERASLLM_DATA`, `../shared/data`
relative to the current directory. `sample` is embedded in the package and needs no data root.

Corpora without a standard split (tatoeba-fra-eng, sms_spam, chatterbot_corpus_en, sample, sms_spam_sample) are
split 90% / 5% / 5% into train / val / test by a fixed seeded shuffle (`SPLIT_SEED`), so every run and every
machine sees the same split; records keep their file order within a split, and split `all` is the whole file
(for an app that makes its own, e.g. stratified, split). tiny_shakespeare follows
the char-rnn convention: first 90% of the characters train, last 10% val.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import random
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kerasllm.data.corpus import Corpus, LabelledCorpus, ParallelCorpus, TextCorpus
from kerasllm.data.make_sample import SAMPLE_FILE, SMS_SAMPLE_FILE
from kerasllm.data.readers import (
    read_conversations,
    read_labelled,
    read_lines,
    read_parallel,
    read_squad,
    read_text,
    read_tsv_pairs,
)

ENV_VAR = "KERASLLM_DATA"
SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.05  # each of val and test, for corpora split by seeded shuffle
LM_TRAIN_FRACTION = 0.9

Resolve = Callable[[str], Path]


@dataclass(frozen=True)
class DataFile:
    """One stored file of a corpus.

    Args:
        path: path inside the corpus folder.
        sha256: sha256 of the stored file.
        url: where the content comes from (the stored file is this, gzip-compressed with `gzip -n -9`
            unless the URL already ends in .gz).
    """

    path: str
    sha256: str
    url: str


@dataclass(frozen=True)
class CorpusEntry:
    """A registered corpus.

    Args:
        name: registry name.
        task: what it is for (translation, classification, language modelling, QA, dialogue).
        folder: folder under the data root ("" for the embedded sample).
        splits: split name -> the key the reader understands (aliases map to the same key).
        files: the stored files, with checksums and source URLs.
        license: licence note, as the source states it.
        read: reads one split: (resolve a file name to a path, split key, (source, target) or None).
        pairs: language pairs for translation corpora; the first one is the default.
        split_note: added to the error for an unknown split.
    """

    name: str
    task: str
    folder: str
    splits: dict[str, str]
    files: tuple[DataFile, ...]
    license: str
    read: Callable[[Resolve, str, tuple[str, str] | None], Corpus]
    pairs: tuple[str, ...] = ()
    split_note: str = ""

    @property
    def embedded(self) -> bool:
        return not self.folder

    @property
    def split_names(self) -> list[str]:
        """Split names without aliases (the first name given for each split) and without `all`, which is the whole
        file rather than a part of it."""
        first: dict[str, str] = {}
        for name, key in self.splits.items():
            if key != "all":
                first.setdefault(key, name)
        return list(first.values())


def _seeded_split(corpus: ParallelCorpus | LabelledCorpus, split: str) -> ParallelCorpus | LabelledCorpus:
    if split == "all":
        return corpus
    order = list(range(len(corpus)))
    random.Random(SPLIT_SEED).shuffle(order)
    held_out = round(len(order) * HELD_OUT_FRACTION)
    parts = {"test": order[:held_out], "val": order[held_out : 2 * held_out], "train": order[2 * held_out :]}
    keep = sorted(parts[split])
    report = dataclasses.replace(
        corpus.report, source=f"{corpus.report.source} [{split}: {len(keep)} of {len(corpus)}]"
    )
    if isinstance(corpus, ParallelCorpus):
        sources, targets = [corpus.sources[i] for i in keep], [corpus.targets[i] for i in keep]
        return ParallelCorpus(sources, targets, report, corpus.source_name, corpus.target_name)
    return LabelledCorpus([corpus.texts[i] for i in keep], [corpus.labels[i] for i in keep], corpus.label_names, report)


def _read_multi30k(resolve: Resolve, split: str, pair: tuple[str, str] | None) -> Corpus:
    source, target = pair
    return read_parallel(
        resolve(f"{split}.{source}.gz"), resolve(f"{split}.{target}.gz"), source_name=source, target_name=target
    )


def _tsv_en_fr_reader(file_name: str) -> Callable[[Resolve, str, tuple[str, str] | None], Corpus]:
    def read(resolve: Resolve, split: str, pair: tuple[str, str] | None) -> Corpus:
        columns = (0, 1) if pair == ("en", "fr") else (1, 0)
        return _seeded_split(
            read_tsv_pairs(resolve(file_name), columns=columns, source_name=pair[0], target_name=pair[1]), split
        )

    return read


def _read_sst2(resolve: Resolve, split: str, pair: tuple[str, str] | None) -> Corpus:
    # GLUE withholds the test labels: that split is read unlabelled.
    corpus = read_labelled(
        resolve(f"{split}.tsv.gz"),
        text_field="sentence",
        label_field=None if split == "test" else "label",
        label_values=["0", "1"],
    )
    return dataclasses.replace(corpus, label_names=["negative", "positive"])


def _read_ag_news(resolve: Resolve, split: str, pair: tuple[str, str] | None) -> Corpus:
    names = [line.strip() for line in read_lines(resolve("classes.txt"))[0] if line.strip()]
    # CSV rows are (class index 1-4, title, description).
    label_values = [str(i) for i in range(1, len(names) + 1)]
    corpus = read_labelled(
        resolve("test.csv.gz"),
        text_field=(1, 2),
        label_field=0,
        label_values=label_values,
        header=False,
        file_format="csv",
    )
    return dataclasses.replace(corpus, label_names=names)


def _sms_reader(file_name: str) -> Callable[[Resolve, str, tuple[str, str] | None], Corpus]:
    def read(resolve: Resolve, split: str, pair: tuple[str, str] | None) -> Corpus:
        corpus = read_labelled(
            resolve(file_name),
            text_field=1,
            label_field=0,
            label_values=["ham", "spam"],
            header=False,
            file_format="tsv",
        )
        return _seeded_split(corpus, split)

    return read


def _read_squad(resolve: Resolve, split: str, pair: tuple[str, str] | None) -> Corpus:
    return read_squad(resolve("dev-v1.1.json.gz"))


def _read_tiny_shakespeare(resolve: Resolve, split: str, pair: tuple[str, str] | None) -> Corpus:
    corpus = read_text(resolve("input.txt.gz"))
    cut = int(len(corpus.text) * LM_TRAIN_FRACTION)
    text = corpus.text[:cut] if split == "train" else corpus.text[cut:]
    lines = text.splitlines()
    report = dataclasses.replace(
        corpus.report,
        source=f"{corpus.report.source} [{split}: {len(text)} characters]",
        read=len(lines),
        dropped_empty=sum(not line.strip() for line in lines),
    )
    return TextCorpus(text, report)


_CHATTERBOT_FILES = {
    "ai": "6a723af3112f3065457b028ac234799657c53ca8d18dfeb0ecac2444b3a63a16",
    "botprofile": "e1efaf8230488e57f8187b9913dad1ad90ed9bf488690519d6a9e3c0657bc687",
    "coding": "c6a0e3a71d7a1e293cb4385173d4602acfbb840825d9e517cdce0305873d5bdb",
    "computers": "0e0c2cdfeafe82fbe3a2964c23b385cc31972c4a757dc5c343b05c5a44c50b1e",
    "conversations": "fb694b0669f55ba24d14dc9b6b3e4f8f16d0df37301d2b0b578e372fc17c49bf",
    "emotion": "0700d15365b0783d38dd11240f4bae662e33eb16afa97ec258fbf4acc3382cb2",
    "food": "4ca2ad39fe8187cd423df6dfb67fe82bf5996b9412210ecac6274cde83f2f67c",
    "gossip": "cb5473ec5c6fa20bdcd2dc6c8fbfc45299971beeadd272e16b368ff9c2c0b1e8",
    "greetings": "e84a77412671576331c1e3611508b3a6e977309571238568cdb1d99975208740",
    "health": "eeb375153a2c1dc15ec56be3d69a45473425a78e2fc74ab2137f0459bc5ef9a5",
    "history": "3341e1e43dcca4bcc65535920e7de68dd0677e7fb8232f5f713825fc981d3845",
    "humor": "5864c0c7d5d77bbe4449c48ec142a26af5a60e63364df05aeb66ad1933af751e",
    "literature": "e544bd808b8b691011f9353509155b9bae52363b2aa1bd235e6210a08ff805da",
    "money": "b4d96f23987f73c21cbc9d9f2c69d45d74d746e573482463faea9a82a53fbdcb",
    "movies": "c0654e0f02f3df7714d0f7ebe8e42fcddb5fbe0559c1d60c5cda535299059bc7",
    "politics": "984031d6cd38e82833c32cbd08688e0575bcc507c0292584f3dc7901ab2b18d8",
    "psychology": "7a7d94428e4b1c7527258ec41385e8c5721aa4a5d71c4b7cb6e78e19451cf3a4",
    "science": "c2579abce0159881e1d27419aff7b086353ab620312b41d4aba8c7893d82d434",
    "sports": "3f6a6a5a7ecb24b4c0b43c7bd98fcd4016e67fd136832e08c6f9b9e86f28e071",
    "tech_support": "3999c3cbcd112c27b2631a85806a25cee087fbe64698bf56a16362bb4c0606f1",
    "trivia": "711bb3e7a4c198ed9d8bde0123a65d5b99f08c4274c9c86dbf1f5c22af3386e7",
}


def _read_chatterbot(resolve: Resolve, split: str, pair: tuple[str, str] | None) -> Corpus:
    return _seeded_split(read_conversations(resolve(f"english/{name}.yml.gz") for name in _CHATTERBOT_FILES), split)


def _github_raw(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_MULTI30K_FILES = {
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "test_2017_flickr.de.gz": "a2c89666db00c495cd8513b9d708d5a3acc205d7de312ef2bf5fb7ebc1540aee",
    "test_2017_flickr.en.gz": "76a444ee25172e72695cddb13ae4a3bda59430617be88e0bb46b60504f054074",
    "test_2017_flickr.fr.gz": "3ba671ceb2299f3304ffafefea7a833d08632fbaf0ba18546f8a2ec2391af496",
    "test_2017_mscoco.de.gz": "799e4854c25d601cb6cb6be29eabe5667734c61ace2f495e03e429031a0bc338",
    "test_2017_mscoco.en.gz": "aab300bfb4427697987e02cd0aacd44bfe8aa50456231b6474c08038bbed2b58",
    "test_2017_mscoco.fr.gz": "754f3072ba9f124569ba5258b32730fc1d214bbf8e0c6dfb2b74401676220db0",
    "test_2018_flickr.de.gz": "ddd0130c7d97482dc5197a02141dae8dd79f20f03586c480d675c09a32daf608",
    "test_2018_flickr.en.gz": "ef4f4844037d4c5dea75c9a8ed5fd78905967a26f67c255e230cc9780032654d",
    "test_2018_flickr.fr.gz": "fb2b83fcceb937a4f7e3e93c1c51c22aba92f1e342391e6b5ba392b16a920501",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
}

_SEEDED_SPLITS = {"train": "train", "val": "val", "test": "test", "all": "all"}
_TATOEBA_URL = _github_raw(
    "DevHunterYZ/Neural-Machine-Translation", "dd286a01f7993cd82f1c1b73e532919f8b3304a5", "fra.txt"
)

CORPORA: dict[str, CorpusEntry] = {
    entry.name: entry
    for entry in [
        CorpusEntry(
            name="multi30k",
            task="translation en/de/fr",
            folder="multi30k",
            splits={
                "train": "train",
                "val": "val",
                "test2016": "test_2016_flickr",
                "test2017": "test_2017_flickr",
                "test2017_mscoco": "test_2017_mscoco",
                "test2018": "test_2018_flickr",
                # The file stems are accepted too.
                "test_2016_flickr": "test_2016_flickr",
                "test_2017_flickr": "test_2017_flickr",
                "test_2018_flickr": "test_2018_flickr",
            },
            files=tuple(
                DataFile(path, sha, f"https://github.com/multi30k/dataset/raw/master/data/task1/raw/{path}")
                for path, sha in _MULTI30K_FILES.items()
            ),
            license="research only (Flickr30K terms); never redistribute",
            read=_read_multi30k,
            pairs=tuple(f"{a}-{b}" for a, b in itertools.permutations(("en", "de", "fr"), 2)),
        ),
        CorpusEntry(
            name="tatoeba-fra-eng",
            task="translation en/fr",
            folder="tatoeba-fra-eng",
            splits=_SEEDED_SPLITS,
            files=(
                DataFile(
                    "fra-eng.tsv.gz", "0954ee9d64d7d5ad6510f64417fa0adf49edf17b0a82c0f956dd8870ba0d750c", _TATOEBA_URL
                ),
            ),
            license="CC BY 2.0 FR (Tatoeba contributors)",
            read=_tsv_en_fr_reader("fra-eng.tsv.gz"),
            pairs=("en-fr", "fr-en"),
        ),
        CorpusEntry(
            name="sst2",
            task="sentiment classification",
            folder="sst2",
            splits={"train": "train", "dev": "dev", "test": "test"},
            files=tuple(
                DataFile(
                    stored,
                    sha,
                    _github_raw(
                        "eyalbd2/Reproducing-AutoPrompt",
                        "6288fb5bec9c572f2492875ae0111df5b6daed11",
                        f"glue_data/SST-2/{upstream}",
                    ),
                )
                for stored, upstream, sha in [
                    (
                        "train.tsv.gz",
                        "train_full.tsv",
                        "1c4843303462f8f93e006ff618a9e61d207468cafd030046d7d7fd6b78af342b",
                    ),
                    ("dev.tsv.gz", "dev.tsv", "19553efc6f7bac0b7fdd37d4e29dc37c15e9e779767249a16f857fbfcedb23fa"),
                    ("test.tsv.gz", "test.tsv", "b701fc89906597eea61be98f2d244e2d02170dbe688c452a9150962d36010385"),
                ]
            ),
            license="no data licence stated; cite Socher et al. 2013 / GLUE",
            read=_read_sst2,
            split_note="test is unlabelled (GLUE hides its labels); dev is the usual test set",
        ),
        CorpusEntry(
            name="ag_news",
            task="topic classification",
            folder="ag_news",
            splits={"test": "test"},
            files=(
                DataFile(
                    "test.csv.gz",
                    "3c277beb6ce3dd635407635cb90a7c5ceaf87168fabb3be218e39aa2b097f706",
                    _github_raw(
                        "yongzhuo/char_CNN_text_classification_Chinese2Pinyin",
                        "789f87c46020ab9ce4476081b4012fe73561fa60",
                        "data/ag_news_csv/test.csv",
                    ),
                ),
                DataFile(
                    "classes.txt",
                    "612dbfa932f07a6ed837295a7d5746ce7412e7bb4bc32ba919fdb3cda3a1b9b5",
                    _github_raw(
                        "suuuch/TransformerClassification",
                        "0d9808e1978c8468b4f8f08a44c5be99d058aa7b",
                        "data/ag_news_csv/classes.txt",
                    ),
                ),
            ),
            license="non-commercial research (dataset readme)",
            read=_read_ag_news,
            split_note="only the official test split (7,600 rows) is available; the 120,000-row train.csv is not in the shared copy",
        ),
        CorpusEntry(
            name="sms_spam",
            task="spam classification",
            folder="sms_spam",
            splits=_SEEDED_SPLITS,
            files=(
                DataFile(
                    "SMSSpamCollection.gz",
                    "8fd20918904042e5104c4d5d22642f1332b0bc670c55df3a8688a1ea7b2e9e8d",
                    _github_raw(
                        "PARKER-X/SpamClassifier",
                        "5fa41eaf3ec0d21d3ffced673800d25b6b8ffc20",
                        "smsspamcollection/SMSSpamCollection",
                    ),
                ),
            ),
            license="free use, cite Almeida et al. 2011 (dataset readme)",
            read=_sms_reader("SMSSpamCollection.gz"),
        ),
        CorpusEntry(
            name="squad_v1.1",
            task="extractive QA",
            folder="squad_v1.1",
            splits={"dev": "dev"},
            files=(
                DataFile(
                    "dev-v1.1.json.gz",
                    "5ef5752d50566ab538501116de1508326eefb6bf70026def7915309f30822727",
                    _github_raw(
                        "rajpurkar/SQuAD-explorer", "eee5fdbf62f8613a7812b03419e6b29617b74fd1", "dataset/dev-v1.1.json"
                    ),
                ),
            ),
            license="CC BY-SA 4.0 (SQuAD site)",
            read=_read_squad,
            split_note="only the dev split (10,570 questions) is available; train-v1.1.json is not in the shared copy",
        ),
        CorpusEntry(
            name="tiny_shakespeare",
            task="language modelling",
            folder="tiny_shakespeare",
            splits={"train": "train", "val": "val"},
            files=(
                DataFile(
                    "input.txt.gz",
                    "bed00f18e91cda6838950656f0a95e07e0f4dbe8649a4b959f7602a7e53fbc6e",
                    _github_raw(
                        "karpathy/char-rnn",
                        "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e",
                        "data/tinyshakespeare/input.txt",
                    ),
                ),
            ),
            license="public-domain text; char-rnn Readme: MIT",
            read=_read_tiny_shakespeare,
        ),
        CorpusEntry(
            name="chatterbot_corpus_en",
            task="dialogue (prompt, response)",
            folder="chatterbot_corpus_en",
            splits=_SEEDED_SPLITS,
            files=tuple(
                DataFile(
                    f"english/{name}.yml.gz",
                    sha,
                    _github_raw(
                        "gunthercox/chatterbot-corpus",
                        "a01efece26661309b870af0251d96f94ee09fb19",
                        f"chatterbot_corpus/data/english/{name}.yml",
                    ),
                )
                for name, sha in _CHATTERBOT_FILES.items()
            ),
            license="BSD 3-clause (Gunther Cox)",
            read=_read_chatterbot,
        ),
        CorpusEntry(
            name="sample",
            task="translation en/fr (embedded)",
            folder="",
            splits=_SEEDED_SPLITS,
            files=(
                DataFile(SAMPLE_FILE, "9a3ca297969c620073a1b2d8361e426ea43cf11ade9b3abc6430b57988dd99ef", _TATOEBA_URL),
            ),
            license="CC BY 2.0 FR (Tatoeba contributors)",
            read=_tsv_en_fr_reader(SAMPLE_FILE),
            pairs=("en-fr", "fr-en"),
        ),
        CorpusEntry(
            name="sms_spam_sample",
            task="spam classification (embedded)",
            folder="",
            splits=_SEEDED_SPLITS,
            files=(
                DataFile(
                    SMS_SAMPLE_FILE,
                    "625cc97a97bc72e91c47a130f58be8cac5e08c0fb2f55303d17c4fe855657127",
                    _github_raw(
                        "PARKER-X/SpamClassifier",
                        "5fa41eaf3ec0d21d3ffced673800d25b6b8ffc20",
                        "smsspamcollection/SMSSpamCollection",
                    ),
                ),
            ),
            license="free use, copyright Almeida & Gómez Hidalgo, cite Almeida et al. 2011 (see ATTRIBUTION-sms.md)",
            read=_sms_reader(SMS_SAMPLE_FILE),
        ),
    ]
}


def data_root(data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Where the corpora are looked for, and why there.

    Returns:
        The data root and a phrase saying where it came from (for messages).
    """
    if data_dir is not None:
        return Path(data_dir), "the data_dir argument"
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]), f"${ENV_VAR}"
    return Path.cwd() / ".." / "shared" / "data", f"the default ../shared/data (${ENV_VAR} is not set)"


def entry(name: str) -> CorpusEntry:
    """The registry entry for `name`; ValueError listing the known names otherwise."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    return CORPORA[name]


def load(name: str, split: str = "train", pair: str | None = None, data_dir: str | os.PathLike | None = None) -> Corpus:
    """Load one split of a registered corpus from local files (nothing is downloaded).

    Args:
        name: registry name (`kerasllm data list`), e.g. "multi30k", "sst2", "sample".
        split: split name, e.g. "train", "val", "test2016"; see `CORPORA[name].splits`.
        pair: "src-tgt" for translation corpora, e.g. "en-de" or "de-en"; default the corpus's first pair.
        data_dir: corpus root; default `$KERASLLM_DATA`, else `../shared/data` from the current directory.

    Returns:
        ParallelCorpus (translation, dialogue), LabelledCorpus (classification), TextCorpus (language
        modelling) or QACorpus (question answering), each with its `report`.

    Raises:
        FileNotFoundError: a corpus file is missing; says where it looked and how to get it.
        ValueError: unknown corpus, split or pair.

    Example:
        >>> corpus = load("sample", "train")
        >>> len(corpus), corpus.source_name, corpus.target_name
        (3600, 'en', 'fr')
    """
    corpus_entry = entry(name)
    if split not in corpus_entry.splits:
        note = f" ({corpus_entry.split_note})" if corpus_entry.split_note else ""
        whole = ", or all (the whole file)" if "all" in corpus_entry.splits else ""
        raise ValueError(f"{name} has no split {split!r}; splits: {', '.join(corpus_entry.split_names)}{whole}{note}")
    languages = _parse_pair(corpus_entry, pair)
    with ExitStack() as stack:
        return corpus_entry.read(
            lambda path: _resolve(corpus_entry, path, data_dir, stack), corpus_entry.splits[split], languages
        )


def verify(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Check the sha256 of every stored file of a corpus.

    Returns:
        {file path: "ok" | "missing" | "sha256 mismatch"}.

    Example:
        >>> verify("sample")
        {'tatoeba_en_fr_4000.tsv.gz': 'ok'}
    """
    corpus_entry = entry(name)
    status = {}
    with ExitStack() as stack:
        for data_file in corpus_entry.files:
            try:
                path = _resolve(corpus_entry, data_file.path, data_dir, stack)
            except FileNotFoundError:
                status[data_file.path] = "missing"
                continue
            status[data_file.path] = "ok" if _sha256(path) == data_file.sha256 else "sha256 mismatch"
    return status


def format_listing(data_dir: str | os.PathLike | None = None) -> str:
    """A table of the registered corpora: task, splits, whether present (and checksums), licence."""
    root, origin = data_root(data_dir)
    rows = [("name", "task", "splits", "status", "license")]
    for corpus_entry in CORPORA.values():
        statuses = list(verify(corpus_entry.name, data_dir).values())
        counts = {s: statuses.count(s) for s in ("ok", "missing", "sha256 mismatch")}
        if counts["missing"] == len(corpus_entry.files):
            status = "missing"
        elif counts["ok"] == len(corpus_entry.files):
            status = "embedded, sha256 ok" if corpus_entry.embedded else "present, sha256 ok"
        else:
            status = f"{counts['ok']} ok, {counts['missing']} missing, {counts['sha256 mismatch']} changed"
        rows.append(
            (corpus_entry.name, corpus_entry.task, ",".join(corpus_entry.split_names), status, corpus_entry.license)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    sources = [f"  {e.name}: {source}" for e in CORPORA.values() for source in _sources(e)]
    return "\n".join(
        [
            f"data root: {root.resolve()} (from {origin})",
            *lines,
            "",
            "sources (nothing is downloaded: fetch, gzip -n -9 unless .gz, store as <data root>/<name>/<file>;",
            "the sha256 of every file is in kerasllm.data.registry.CORPORA[name].files, checked by verify(name)):",
            *sources,
        ]
    )


def _sources(corpus_entry: CorpusEntry) -> list[str]:
    """The source URLs, one folder pattern when all files share a folder."""
    urls = [f.url for f in corpus_entry.files]
    folders = {url.rsplit("/", 1)[0] for url in urls}
    if corpus_entry.embedded:
        return [f"embedded in the package, selected from {url}" for url in urls]
    if len(urls) > 1 and len(folders) == 1:
        return [f"{folders.pop()}/<file> ({len(urls)} files)"]
    return urls


def _parse_pair(corpus_entry: CorpusEntry, pair: str | None) -> tuple[str, str] | None:
    if not corpus_entry.pairs:
        if pair is not None:
            raise ValueError(f"{corpus_entry.name} is not a translation corpus: --pair/pair does not apply")
        return None
    pair = pair or corpus_entry.pairs[0]
    if pair not in corpus_entry.pairs:
        raise ValueError(f"{corpus_entry.name} has no pair {pair!r}; pairs: {', '.join(corpus_entry.pairs)}")
    source, target = pair.split("-")
    return source, target


def _resolve(corpus_entry: CorpusEntry, path: str, data_dir: str | os.PathLike | None, stack: ExitStack) -> Path:
    if corpus_entry.embedded:
        # as_file gives a real path even when the package is imported from a zip.
        location = stack.enter_context(resources.as_file(resources.files("kerasllm.data") / "sample" / path))
        if not location.is_file():
            raise FileNotFoundError(
                f"the embedded sample {location} is missing from the installed package: reinstall kerasllm, "
                "or regenerate it with `python -m kerasllm.data.make_sample` (see kerasllm/data/make_sample.py)"
            )
        return location
    root, origin = data_root(data_dir)
    location = root / corpus_entry.folder / path
    if not location.is_file():
        url = next(f.url for f in corpus_entry.files if f.path == path)
        raise FileNotFoundError(
            f"corpus {corpus_entry.name!r}: {location.resolve()} not found (data root from {origin}). "
            f"Set ${ENV_VAR} (or --data-dir) to the folder that holds {corpus_entry.folder}/, "
            f"or fetch {url} and store it as {corpus_entry.folder}/{path} (gzip -n -9 unless already .gz)"
        )
    return location


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
