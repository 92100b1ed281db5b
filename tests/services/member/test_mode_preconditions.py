"""A data mode is switched only when what it needs holds: dual write only once the monolith no
longer writes members itself (its members feature read-only or retired, its points on the
member service), single write only once it serves no member route. The stage engine flips the
monolith's features first (infra/stages.py); a hand-made PUT /admin/data-mode out of that
order is a 409 naming what is missing, and nothing moves."""

from __future__ import annotations

from libs.response import is_valid_envelope
from monolith.service_layer.features import Features
from tests.services.member.conftest import ADMIN, MemberService


def monolith_features(service: MemberService, values: dict[str, str]) -> None:
    """Set the monolith's feature switches where it keeps them (the legacy DB)."""
    Features(service.legacy).change(values)


def mode(service: MemberService) -> str:
    return service.http.get("/admin/data-mode", headers=ADMIN).json()["data"]["mode"]


def test_dual_write_is_refused_while_the_monolith_still_writes_members(member_service):
    with member_service() as service:
        refused = service.switch("dual")
        assert refused.status_code == 409, refused.text
        body = refused.json()
        assert is_valid_envelope(body) and body["error"]["code"] == "MODE_PRECONDITION_FAILED"
        assert {d["feature"] for d in body["error"]["details"]} == {"members", "member_points"}
        assert "members" in body["error"]["message"]
        assert mode(service) == "shared"
        email, _ = service.signup("Kim")  # the shared mode still works
        assert (
            service.http.patch(
                "/api/members/me",
                json={"name": "Lee"},
                headers={"Authorization": f"Bearer {service.token(email)}"},
            ).status_code
            == 200
        )

        monolith_features(service, {"members": "read-only"})
        still = service.switch("dual")
        assert still.status_code == 409
        assert [d["feature"] for d in still.json()["error"]["details"]] == ["member_points"]

        monolith_features(service, {"member_points": "member-service"})
        assert service.switch("dual").status_code == 200
        assert mode(service) == "dual"


def test_single_write_waits_for_the_monolith_to_retire_members_and_back_is_free(member_service):
    with member_service() as service:
        monolith_features(service, {"members": "read-only", "member_points": "member-service"})
        assert service.switch("dual").status_code == 200
        refused = service.switch("single")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["details"] == [
            {"feature": "members", "value": "read-only", "required": ["retired"]}
        ]
        assert mode(service) == "dual"

        monolith_features(service, {"members": "retired"})
        assert service.switch("single").status_code == 200
        # Back the way the stage engine walks it: the data mode first, then the features.
        assert service.switch("dual").status_code == 200
        monolith_features(service, {"members": "read-only"})
        assert service.switch("shared").status_code == 200
        assert mode(service) == "shared"
