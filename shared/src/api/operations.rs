//! The 87 operations of the Proton model (AwsProton20200720), as one typed list: the
//! dispatcher matches on it, and an operation paved has not built yet is told apart from a
//! target no Proton client would send.

macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        /// An operation of the Proton model.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($name),*
        }

        impl Operation {
            /// Every operation of the model, in its order.
            pub const ALL: &'static [Operation] = &[$(Operation::$name),*];

            /// The name in `X-Amz-Target: AwsProton20200720.<name>`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$name => stringify!($name)),*
                }
            }

            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($name) => Some(Operation::$name),)*
                    _ => None,
                }
            }
        }
    };
}

operations! {
    AcceptEnvironmentAccountConnection,
    CancelComponentDeployment,
    CancelEnvironmentDeployment,
    CancelServiceInstanceDeployment,
    CancelServicePipelineDeployment,
    CreateComponent,
    CreateEnvironment,
    CreateEnvironmentAccountConnection,
    CreateEnvironmentTemplate,
    CreateEnvironmentTemplateVersion,
    CreateRepository,
    CreateService,
    CreateServiceInstance,
    CreateServiceSyncConfig,
    CreateServiceTemplate,
    CreateServiceTemplateVersion,
    CreateTemplateSyncConfig,
    DeleteComponent,
    DeleteDeployment,
    DeleteEnvironment,
    DeleteEnvironmentAccountConnection,
    DeleteEnvironmentTemplate,
    DeleteEnvironmentTemplateVersion,
    DeleteRepository,
    DeleteService,
    DeleteServiceSyncConfig,
    DeleteServiceTemplate,
    DeleteServiceTemplateVersion,
    DeleteTemplateSyncConfig,
    GetAccountSettings,
    GetComponent,
    GetDeployment,
    GetEnvironment,
    GetEnvironmentAccountConnection,
    GetEnvironmentTemplate,
    GetEnvironmentTemplateVersion,
    GetRepository,
    GetRepositorySyncStatus,
    GetResourcesSummary,
    GetService,
    GetServiceInstance,
    GetServiceInstanceSyncStatus,
    GetServiceSyncBlockerSummary,
    GetServiceSyncConfig,
    GetServiceTemplate,
    GetServiceTemplateVersion,
    GetTemplateSyncConfig,
    GetTemplateSyncStatus,
    ListComponentOutputs,
    ListComponentProvisionedResources,
    ListComponents,
    ListDeployments,
    ListEnvironmentAccountConnections,
    ListEnvironmentOutputs,
    ListEnvironmentProvisionedResources,
    ListEnvironmentTemplateVersions,
    ListEnvironmentTemplates,
    ListEnvironments,
    ListRepositories,
    ListRepositorySyncDefinitions,
    ListServiceInstanceOutputs,
    ListServiceInstanceProvisionedResources,
    ListServiceInstances,
    ListServicePipelineOutputs,
    ListServicePipelineProvisionedResources,
    ListServiceTemplateVersions,
    ListServiceTemplates,
    ListServices,
    ListTagsForResource,
    NotifyResourceDeploymentStatusChange,
    RejectEnvironmentAccountConnection,
    TagResource,
    UntagResource,
    UpdateAccountSettings,
    UpdateComponent,
    UpdateEnvironment,
    UpdateEnvironmentAccountConnection,
    UpdateEnvironmentTemplate,
    UpdateEnvironmentTemplateVersion,
    UpdateService,
    UpdateServiceInstance,
    UpdateServicePipeline,
    UpdateServiceSyncBlocker,
    UpdateServiceSyncConfig,
    UpdateServiceTemplate,
    UpdateServiceTemplateVersion,
    UpdateTemplateSyncConfig,
}

impl Operation {
    /// A listing paved answers whole, with no `nextToken`: a target's outputs and provisioned
    /// resources (a stack has at most 200 outputs and 500 resources).
    pub fn answers_in_one_page(self) -> bool {
        let name = self.name();
        name.starts_with("List")
            && (name.ends_with("Outputs") || name.ends_with("ProvisionedResources"))
    }
}
