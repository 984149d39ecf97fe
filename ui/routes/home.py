"""The start page: ``/`` sends a user to their first clinic; each clinic has an overview page."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ui.web import Page, clinic_page, redirect, render, user_page

router = APIRouter(include_in_schema=False)


@router.get("/")
def start(page: Page = Depends(user_page())) -> Response:
    assert page.principal is not None
    names = dict(page.clinics)
    usable = [c for c in page.principal.clinic_ids() if page.principal.permissions_in(c) and c in names]
    return redirect(page.request, f"/clinics/{usable[0]}/")


@router.get("/clinics/{clinic_id}/")
def overview(clinic_id: int, page: Page = Depends(clinic_page())) -> Response:
    return render(page, "home.html")
