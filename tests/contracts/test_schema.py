import json
from pathlib import Path

from im_contracts import MODEL_BY_TYPE, topics
from im_contracts.schema import TOPICS_FILE, check_schemas, main, render_schemas, write_schemas

COMMITTED_SCHEMAS = Path(__file__).resolve().parents[2] / "contracts" / "schemas"


def test_committed_schemas_match_the_code():
    assert check_schemas(COMMITTED_SCHEMAS) == []
    assert main(["--check", str(COMMITTED_SCHEMAS)]) == 0


def test_one_schema_per_type_plus_topic_index():
    assert set(render_schemas()) == {f"{name}.json" for name in MODEL_BY_TYPE} | {TOPICS_FILE}


def test_topic_index_lists_every_topic():
    index = json.loads(render_schemas()[TOPICS_FILE])

    assert sorted(index) == sorted(topics.ALL_TOPICS)
    assert index[topics.MODERATION_COMMANDS] == [
        "BlockCreator", "UnblockCreator", "BlockSeller", "UnblockSeller", "SetSellerAccess",
    ]


def test_type_is_required_on_the_wire():
    schema = json.loads(render_schemas()["SendMessage.json"])

    assert schema["required"][0] == "type"
    assert schema["properties"]["type"]["const"] == "SendMessage"
    assert schema["x-kafka-topic"] == topics.SEND_REQUESTED
    assert schema["x-kafka-key"] == "conversation_id"


def test_check_reports_changed_missing_and_stale_files(tmp_path, capsys):
    write_schemas(tmp_path)
    (tmp_path / "SendMessage.json").write_text("{}\n")
    (tmp_path / "BlockCreator.json").unlink()
    (tmp_path / "SendEmail.json").write_text("{}\n")

    exit_code = main(["--check", str(tmp_path)])

    report = capsys.readouterr().err
    assert exit_code == 1
    assert "3 schema file(s) differ" in report
    assert "changed: SendMessage.json" in report
    assert "missing: BlockCreator.json" in report
    assert "stale: SendEmail.json" in report


def test_write_makes_a_directory_match(tmp_path):
    (tmp_path / "SendEmail.json").write_text("{}\n")

    changes = write_schemas(tmp_path)

    assert "removed SendEmail.json" in changes
    assert check_schemas(tmp_path) == []
    assert write_schemas(tmp_path) == []
