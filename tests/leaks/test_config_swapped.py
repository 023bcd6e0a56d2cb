"""A careless user swaps K3CLOUD_APP_ID and K3CLOUD_APP_SECRET: ``split_app_id`` quotes the
first 12 characters of the value it got, i.e. 12 of the app secret's 32."""

import pytest

from k3cloud_client import K3CloudClient, K3CloudError
from k3cloud_client.testing import TEST_ACCT_ID, TEST_APP_ID, TEST_APP_SECRET, TEST_USER_NAME


def test_swapped_app_id_and_secret() -> None:
    with pytest.raises(K3CloudError) as info:
        K3CloudClient(
            "http://127.0.0.1:9/k3cloud/",
            acct_id=TEST_ACCT_ID,
            user_name=TEST_USER_NAME,
            app_id=TEST_APP_SECRET,
            app_secret=TEST_APP_ID,
        )
    assert TEST_APP_SECRET[:8] not in str(info.value), str(info.value)
