"""Which AWS account hosts SageMaker's prebuilt images in each region.

Facts from the SageMaker Python SDK's ``image_uri_config/sklearn.json`` (framework versions
1.2-1 and 1.4-2 share one registry account per region). Stacks that are environment-agnostic
resolve the account at deploy time through a ``CfnMapping``; stacks with a concrete region
resolve it at synth and fail early for an unsupported region.
"""
from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

SKLEARN_REPOSITORY = "sagemaker-scikit-learn"

SKLEARN_REGISTRY_ACCOUNTS: dict[str, str] = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}


class RegistryAccountLookup:
    """Resolves a registry account for the stack's region, by table at synth or by CfnMapping at deploy."""

    def __init__(self, *, mapping_id: str, accounts: dict[str, str], image_kind: str) -> None:
        self._mapping_id = mapping_id
        self._accounts = accounts
        self._image_kind = image_kind

    def account_for(self, scope: Construct) -> str:
        stack = cdk.Stack.of(scope)
        if not cdk.Token.is_unresolved(stack.region):
            if stack.region not in self._accounts:
                raise ValueError(
                    f"{self._image_kind} images are not published in region {stack.region!r}; supported regions: "
                    + ", ".join(sorted(self._accounts)))
            return self._accounts[stack.region]
        mapping = stack.node.try_find_child(self._mapping_id)
        if mapping is None:
            mapping = cdk.CfnMapping(stack, self._mapping_id, mapping={
                region: {"account": account} for region, account in sorted(self._accounts.items())})
        return mapping.find_in_map(cdk.Aws.REGION, "account")

    def repository_arn(self, scope: Construct, repository: str) -> str:
        account = self.account_for(scope)
        return cdk.Stack.of(scope).format_arn(service="ecr", account=account, resource="repository",
                                              resource_name=repository)


SKLEARN_REGISTRY = RegistryAccountLookup(mapping_id="SklearnImageRegistry", accounts=SKLEARN_REGISTRY_ACCOUNTS,
                                         image_kind="SageMaker scikit-learn")


def sklearn_image_uri(scope: Construct, framework_version: str) -> str:
    """``<account>.dkr.ecr.<region>.<suffix>/sagemaker-scikit-learn:<version>-cpu-py3`` for the stack's region."""
    stack = cdk.Stack.of(scope)
    account = SKLEARN_REGISTRY.account_for(scope)
    return f"{account}.dkr.ecr.{stack.region}.{stack.url_suffix}/{SKLEARN_REPOSITORY}:{framework_version}-cpu-py3"


#: Model Monitor's analyzer image (data and model quality). Facts from the SageMaker Python SDK's
#: ``sagemaker-core/src/sagemaker/core/image_retriever/image_uri_config/model-monitor.json`` (one
#: unversioned image per region, repository ``sagemaker-model-monitor-analyzer``; the SDK builds the
#: URI without a tag). Different accounts from the scikit-learn table: do not merge the two. The SDK lists no
#: analyzer image in ap-south-2, ap-southeast-4, us-gov-east-1 or us-gov-west-1, which do have scikit-learn
#: images: ModelMonitor refuses those regions at synth rather than guess an account.
MODEL_MONITOR_REPOSITORY = "sagemaker-model-monitor-analyzer"

MODEL_MONITOR_REGISTRY_ACCOUNTS: dict[str, str] = {
    "af-south-1": "875698925577",
    "ap-east-1": "001633400207",
    "ap-northeast-1": "574779866223",
    "ap-northeast-2": "709848358524",
    "ap-northeast-3": "990339680094",
    "ap-south-1": "126357580389",
    "ap-southeast-1": "245545462676",
    "ap-southeast-2": "563025443158",
    "ap-southeast-3": "669540362728",
    "ca-central-1": "536280801234",
    "cn-north-1": "453000072557",
    "cn-northwest-1": "453252182341",
    "eu-central-1": "048819808253",
    "eu-central-2": "590183933784",
    "eu-north-1": "895015795356",
    "eu-south-1": "933208885752",
    "eu-south-2": "437450045455",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "eu-west-3": "680080141114",
    "il-central-1": "843974653677",
    "me-central-1": "588750061953",
    "me-south-1": "607024016150",
    "sa-east-1": "539772159869",
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-isof-east-1": "853188333426",
    "us-isof-south-1": "467912361380",
    "us-west-1": "890145073186",
    "us-west-2": "159807026194",
}

MODEL_MONITOR_REGISTRY = RegistryAccountLookup(
    mapping_id="ModelMonitorImageRegistry", accounts=MODEL_MONITOR_REGISTRY_ACCOUNTS,
    image_kind="SageMaker Model Monitor analyzer")


def model_monitor_image_uri(scope: Construct) -> str:
    """``<account>.dkr.ecr.<region>.<suffix>/sagemaker-model-monitor-analyzer`` for the stack's region."""
    stack = cdk.Stack.of(scope)
    account = MODEL_MONITOR_REGISTRY.account_for(scope)
    return f"{account}.dkr.ecr.{stack.region}.{stack.url_suffix}/{MODEL_MONITOR_REPOSITORY}"
