"""The mongodb role's decisions: members, initiator, users and indexes."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.webstack.deploy.plugins.filter.mongodb import (
    mongodb_config_errors,
    mongodb_indexes,
    mongodb_initiator,
    mongodb_keyfile_errors,
    mongodb_members,
    mongodb_users,
)

SECRET = "a-secret-of-enough-length"


def test_members_in_inventory_order_at_their_reachable_address():
    hostvars = {
        "db1": {"ansible_host": "10.0.1.11"},
        "db2": {"ansible_host": "10.0.1.12", "mongodb_member_host": "db2.internal", "mongodb_member_priority": 2},
        "db3": {"mongodb_member_hidden": True, "mongodb_port": 27018},
    }
    assert mongodb_members(["db1", "db2", "db3"], hostvars) == [
        {"host": "10.0.1.11:27017", "priority": 1},
        {"host": "db2.internal:27017", "priority": 2},
        {"host": "db3:27018", "priority": 0, "hidden": True},
    ]


def test_two_members_at_one_address_are_refused():
    hostvars = {"a": {"ansible_host": "10.0.0.1"}, "b": {"ansible_host": "10.0.0.1"}}
    with pytest.raises(AnsibleFilterError, match=r"two hosts are reached at 10\.0\.0\.1:27017"):
        mongodb_members(["a", "b"], hostvars)


def test_more_than_seven_voting_members_are_refused():
    names = [f"db{i}" for i in range(8)]
    with pytest.raises(AnsibleFilterError, match="at most 7 voting members"):
        mongodb_members(names, {n: {} for n in names})


def test_initiator_is_the_first_host_unless_one_is_named():
    assert mongodb_initiator(["db2", "db1", "db3"]) == "db2"
    assert mongodb_initiator(["db2", "db1"], "db1") == "db1"
    assert mongodb_initiator(["db2", "db1"], "") == "db2"


def test_initiator_errors_name_the_variable():
    with pytest.raises(AnsibleFilterError, match=r"mongodb_replicaset_group: the group is empty"):
        mongodb_initiator([])
    with pytest.raises(AnsibleFilterError, match=r"mongodb_replicaset_initiator: expected a host .* found 'db9'"):
        mongodb_initiator(["db1"], "db9")


def test_users_get_their_database_and_roles_normalized():
    result = mongodb_users(
        [
            {"name": "eec_nif_app", "password": SECRET, "roles": ["readWrite", {"role": "read", "db": "reports"}]},
            {"name": "ops", "password": SECRET, "database": "admin", "roles": [{"role": "clusterMonitor"}]},
            {"name": "old", "state": "absent"},
        ],
        "eec_nif",
    )
    assert result["errors"] == []
    assert result["users"] == [
        {
            "name": "eec_nif_app",
            "database": "eec_nif",
            "state": "present",
            "password": SECRET,
            "roles": [{"role": "readWrite", "db": "eec_nif"}, {"role": "read", "db": "reports"}],
        },
        {
            "name": "ops",
            "database": "admin",
            "state": "present",
            "password": SECRET,
            "roles": [{"role": "clusterMonitor", "db": "admin"}],
        },
        {"name": "old", "database": "eec_nif", "state": "absent"},
    ]


def test_user_errors_name_the_entry_and_never_the_password():
    result = mongodb_users(
        [
            {"name": "app", "password": "tiny-secret", "roles": []},
            {"name": "app", "password": SECRET, "roles": ["read"], "pwd": "x"},
            {"name": "bad/name", "password": SECRET, "roles": ["read"], "database": "a.b", "state": "gone"},
            {"name": "odd", "password": SECRET, "roles": [3]},
        ],
        "eec_nif",
    )
    text = " ".join(result["errors"])
    assert "mongodb_users entry 'app': password: expected a string of at least 16 characters" in text
    assert "mongodb_users entry 'app': roles: expected a list" in text
    assert "mongodb_users entry 'app': unknown key(s) pwd" in text
    assert "mongodb_users entry 'app': declared twice for database 'eec_nif'" in text
    assert "entry 'bad/name': name:" in text
    assert "entry 'bad/name': state: expected present or absent, found 'gone'" in text
    assert "entry 'bad/name': database: expected a MongoDB database name, found 'a.b'" in text
    assert "entry 'odd': roles: expected a role name or {role, db}, found 3" in text
    assert "tiny-secret" not in text


# The EEC-NIF plan's indexes, as the role's defaults document them.
EEC_NIF = [
    {"collection": "studentusers", "keys": {"schoolId": 1, "grade": 1, "section": 1}},
    {"collection": "feeinvoices", "keys": {"schoolId": 1, "studentId": 1, "status": 1}},
]


def test_plan_indexes_become_module_input_with_mongodb_default_names():
    result = mongodb_indexes(EEC_NIF, "eec_nif")
    assert result["errors"] == []
    assert result["indexes"] == [
        {
            "database": "eec_nif",
            "collection": "studentusers",
            "keys": {"schoolId": 1, "grade": 1, "section": 1},
            "options": {"name": "schoolId_1_grade_1_section_1"},
            "state": "present",
        },
        {
            "database": "eec_nif",
            "collection": "feeinvoices",
            "keys": {"schoolId": 1, "studentId": 1, "status": 1},
            "options": {"name": "schoolId_1_studentId_1_status_1"},
            "state": "present",
        },
    ]
    # Key order is the index: it must survive.
    assert list(result["indexes"][0]["keys"]) == ["schoolId", "grade", "section"]


def test_index_options_are_camel_cased_and_absent_needs_only_a_name():
    result = mongodb_indexes(
        [
            {"collection": "sessions", "keys": {"createdAt": 1}, "expire_after_seconds": 3600, "name": "ttl"},
            {
                "collection": "users",
                "keys": {"email": 1},
                "unique": True,
                "partial_filter_expression": {"deleted": False},
            },
            {"collection": "users", "name": "old_index", "state": "absent"},
        ],
        "eec_nif",
    )
    assert result["errors"] == []
    assert result["indexes"][0]["options"] == {"name": "ttl", "expireAfterSeconds": 3600}
    assert result["indexes"][1]["options"] == {
        "name": "email_1",
        "unique": True,
        "partialFilterExpression": {"deleted": False},
    }
    assert result["indexes"][2] == {
        "database": "eec_nif",
        "collection": "users",
        "options": {"name": "old_index"},
        "state": "absent",
    }


def test_index_errors_name_the_entry_and_the_key():
    result = mongodb_indexes(
        [
            {"collection": "a", "keys": {"x": 2}},
            {"collection": "", "keys": {"x": 1}},
            {"collection": "b", "keys": {}},
            {"collection": "c", "keys": {"x": 1}, "unique": "yes", "expire_after_seconds": -5, "ttl": 3},
            {"collection": "d", "keys": {"x": 1}},
            {"collection": "d", "keys": {"x": 1}},
            {"collection": "e", "keys": {"x": True}},
        ],
        "eec_nif",
    )
    text = " ".join(result["errors"])
    assert "mongodb_indexes[0] (a): keys: x: expected one of 1, -1, text, 2dsphere, 2d, hashed, found 2" in text
    assert "mongodb_indexes[1] (no collection): collection: expected a collection name" in text
    assert "mongodb_indexes[2] (b): keys: expected a mapping" in text
    assert "mongodb_indexes[3] (c): unique: expected bool, found 'yes'" in text
    assert "mongodb_indexes[3] (c): expire_after_seconds: expected int, found -5" in text
    assert "mongodb_indexes[3] (c): unknown key(s) ttl" in text
    assert "mongodb_indexes[5] (d): index 'x_1' declared twice on eec_nif.d" in text
    assert "mongodb_indexes[6] (e): keys: x: expected one of" in text


def test_not_a_list_is_an_error():
    assert mongodb_indexes({"collection": "a"}, "db")["errors"] == [
        "mongodb_indexes: expected a list of indexes, found dict."
    ]
    assert mongodb_users("x", "db")["errors"] == ["mongodb_users: expected a list of users, found str."]


def test_keyfile_content_checks():
    assert mongodb_keyfile_errors("c2VjcmV0a2V5Zm9ybW9uZ29kYnJlcGxpY2FzZXQ=\n") == []
    assert "found none" in mongodb_keyfile_errors("")[0]
    assert "found 3" in mongodb_keyfile_errors("abc")[0]
    message = mongodb_keyfile_errors("not base64 at all!!")[0]
    assert "base64" in message and "not base64" not in message
    assert "found 1025" in mongodb_keyfile_errors("a" * 1025)[0]


GOOD_CONF = """
# Ansible managed
storage:
  dbPath: "/var/lib/mongodb"
systemLog:
  destination: file
  logAppend: true
  path: "/var/log/mongodb/mongod.log"
net:
  port: 27017
  bindIp: "127.0.0.1,10.0.1.11"
processManagement:
  timeZoneInfo: /usr/share/zoneinfo
security:
  authorization: enabled
  keyFile: "/etc/mongodb/keyfile"
replication:
  replSetName: "rs0"
"""


def test_a_rendered_config_mongod_accepts_has_no_errors():
    assert mongodb_config_errors(GOOD_CONF) == []
    standalone = GOOD_CONF.split("replication:")[0].replace('  keyFile: "/etc/mongodb/keyfile"\n', "")
    assert mongodb_config_errors(standalone) == []


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("port: 27017", "port: 70000", "net.port (mongodb_port): expected a port number 1-65535, found 70000"),
        ("port: 27017", "port: '27017'", "net.port (mongodb_port)"),
        (
            'bindIp: "127.0.0.1,10.0.1.11"',
            'bindIp: "127.0.0.1,0.0.0.0"',
            "net.bindIp (mongodb_bind_addresses): expected no wildcard",
        ),
        (
            'bindIp: "127.0.0.1,10.0.1.11"',
            'bindIp: "127.0.0.1,"',
            "net.bindIp (mongodb_bind_addresses): expected a comma",
        ),
        (
            'dbPath: "/var/lib/mongodb"',
            'dbPath: "var/lib"',
            "storage.dbPath (mongodb_storage_path): expected an absolute path",
        ),
        ("authorization: enabled", "authorization: true", "security.authorization (mongodb_authorization)"),
        ('replSetName: "rs0"', 'replSetName: "rs 0"', "replication.replSetName (mongodb_replicaset_name)"),
        ('  keyFile: "/etc/mongodb/keyfile"\n', "", "security.keyFile (mongodb_keyfile_path): expected a key file"),
        ("processManagement:", "procesManagement:", "unknown section(s) procesManagement"),
        ("net:\n", "net: [\n", "expected YAML"),
    ],
)
def test_config_errors_name_the_setting_and_the_variable(old, new, fragment):
    text = GOOD_CONF.replace(old, new, 1)
    assert text != GOOD_CONF
    errors = mongodb_config_errors(text)
    assert any(fragment in e for e in errors), errors


def test_wiredtiger_cache_below_mongods_minimum():
    text = GOOD_CONF.replace("storage:\n", "storage:\n  wiredTiger:\n    engineConfig:\n      cacheSizeGB: 0.1\n")
    assert mongodb_config_errors(text) == [
        "mongod.conf storage.wiredTiger.engineConfig.cacheSizeGB (mongodb_wiredtiger_cache_gb): "
        "expected a size in GB of at least 0.25, found 0.1."
    ]
