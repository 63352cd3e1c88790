// GraphQL Code Generator: typed documents for every operation in
// ../operations, from the committed schema. Run by `sdk/generate`.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["../operations/*.graphql"],
  emitLegacyCommonJSImports: false,
  generates: {
    "src/graphql/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        importExtension: ".js",
        useTypeImports: true,
        enumsAsTypes: true,
        strictScalars: true,
        scalars: { DateTime: "string", JSON: "unknown", Upload: "Blob" },
      },
    },
  },
};

export default config;
